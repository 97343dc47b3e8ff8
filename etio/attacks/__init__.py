"""Membership-inference attacks on the trained models of a trace store, and the MemGuard defence.

- :mod:`.mlleaks` — ML-Leaks single shadow model, four variants (MLLeak*, Top3MLLeak*, ±label)
- :mod:`.oak17` — Shokri et al.'s multiple shadow models (Oak17*, paper: ShadowAcc)
- :mod:`.threshold` — Yeom et al.'s loss threshold (Threshold*)
- :mod:`.memguard` — MemGuard's output perturbation and the top-3 attack against it (Memguard*)
- :mod:`.attack_model` — the small attack MLPs, trained many at once
- :mod:`.base` — the :class:`~.base.Attack` base class and the registry (``register_attack``, ``get_attack``,
  ``list_attacks``): each module above registers its family
- :mod:`.stage` — all attacks over a store, results written per configuration and attack
"""
