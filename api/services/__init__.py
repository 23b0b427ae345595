"""Use cases. Keyword-only functions named by verb (get, get_or_raise, create, update, delete,
list); they flush but never commit (the route owns the unit of work) and raise
:mod:`api.errors` domain errors, never HTTP exceptions."""
