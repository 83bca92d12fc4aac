"""The OpenAPI document in Omni's shape: ``servers: [{url: /api/v2}]`` and paths relative
to it (the URLs served do not change), so that Omni's SDK idiom type-checks against it:
``createClient<paths>({baseUrl: `${base}/api/v2`})`` then ``client.GET("/event-ops/metrics")``.
"""

from apispec import BasePlugin

BASE_PATH = "/api/v2"
SERVERS = [{"url": BASE_PATH}]


class ServerRelativePaths(BasePlugin):
    """Writes every path under BASE_PATH relative to it (runs after flask-smorest's plugin)."""

    def path_helper(self, path=None, **kwargs):
        if path and path.startswith(BASE_PATH + "/"):
            return path[len(BASE_PATH) :]
        return None


def install(api) -> None:
    """Add the plugin to ``api``'s spec; its paths from then on are server-relative."""
    plugin = ServerRelativePaths()
    plugin.init_spec(api.spec)
    api.spec.plugins.append(plugin)
