"""The host's own hook implementations: ordinary plugins, registered with
``trylast`` so that any installed plugin comes first."""
