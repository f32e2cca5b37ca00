"""The service shell: the engines, the aiohttp application factory, the CLI, logging and the demo.
Nothing in the domain packages imports it."""
