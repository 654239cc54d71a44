"""The staff web app at `/app`: server-rendered Jinja2 (autoescaped) with htmx and Chart.js
served from the package's own static files."""
