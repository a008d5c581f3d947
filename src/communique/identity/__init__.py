"""Who someone is: passwords, TOTP second factor, recovery codes, sign-in and web sessions."""
