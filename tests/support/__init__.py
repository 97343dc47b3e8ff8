"""Code the tests share: repository paths, command runners, small trained ensembles, planted bugs."""
