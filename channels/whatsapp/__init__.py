"""WhatsApp Business over Meta's Cloud API."""

from channels.whatsapp.adapter import SIGNATURE_HEADER, WhatsAppAdapter
from channels.whatsapp.config import CloudConfig

__all__ = ["SIGNATURE_HEADER", "CloudConfig", "WhatsAppAdapter"]
