"""The organisation: skills, teams, agents, capabilities, shifts and busy time, one package each;
``crud.py`` builds the six operations they share. What the organisation is *as of which change*
(the version the caches key on) is :mod:`api.org_version`, below every use case.
"""
