from etio.commands.app import main

main()
