"""How Metacentric is started in production: the webhook receiver, the launcher, serving and deploy helpers."""
