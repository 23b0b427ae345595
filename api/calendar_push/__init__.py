"""Push notifications from calendar providers (Google channels, Microsoft Graph subscriptions):
each verified notification queues an incremental sync of its connection."""
