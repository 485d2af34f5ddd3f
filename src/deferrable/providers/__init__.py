"""Provider adapters: the only modules that know a provider's wire format."""
