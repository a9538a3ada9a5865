"""CDK app of CryptoSmartTrader: stacks composed of one construct per concern."""
