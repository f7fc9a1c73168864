"""The front door every face shares: staff sign-in, health, the API description."""
