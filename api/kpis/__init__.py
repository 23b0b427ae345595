"""KPIs: first response, resolution, SLA compliance, backlog."""
