"""The first-line bot: the dialog (`dialog`), FAQ matching, lead capture, hand-over, the external
bot API and the demo knowledge base. It may import `inbox.routing` and the inbox's own modules."""
