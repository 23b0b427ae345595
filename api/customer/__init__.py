"""The customer's pages under ``/c``: the slot picker, confirmation, reschedule, cancel, the
.ics file and the waiting room a single-use call link opens (server-rendered, no JavaScript
needed; ``room.js`` only updates the waiting room by itself)."""
