"""Channel integrations: e-mail (SMTP), SMS (Twilio), letters (PDF + mail-house export),
staff call tasks with limited-content voicemail scripts, and the provider webhooks.

Every provider implements `carecollect.channel.base.Provider`; the dispatcher
(`carecollect.outreach.dispatch`) is the only caller of `send`.
"""
