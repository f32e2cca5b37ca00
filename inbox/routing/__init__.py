"""Routing: rules, assignment strategies, SLA policies and business hours, notifications. It imports
only the inbox's own modules and crm."""
