"""The Function App (Python v2 programming model): registers the blueprints in functions/.

Importing it quiets the Azure SDK's HTTP request logging (``shared.composition`` does it at
import, ``quiet_azure_sdk_logging``): in Azure the worker would otherwise send every storage
URL to Application Insights. It also refuses to
start without the pseudonym key (``FRAUD_PSEUDONYM_KEY``, docs/DATA.md): no function runs and
no event is taken off the hub until the key is configured."""
import azure.functions as func

import shared.composition  # noqa: F401  (quiets the SDK's HTTP logging at import)
from shared.adapters.pseudonym_key import require_pseudonym_key

require_pseudonym_key()

from functions.archive_timer import bp as archive_timer
from functions.dashboard_http import bp as dashboard_http
from functions.labels_http import bp as labels_http
from functions.model_http import bp as model_http
from functions.monitor_timer import bp as monitor_timer
from functions.retention_timer import bp as retention_timer
from functions.retrain_blob import bp as retrain_blob
from functions.score_http import bp as score_http
from functions.score_stream import bp as score_stream

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(score_stream)
app.register_functions(score_http)
app.register_functions(labels_http)
app.register_functions(monitor_timer)
app.register_functions(model_http)
app.register_functions(retrain_blob)
app.register_functions(retention_timer)
app.register_functions(dashboard_http)
app.register_functions(archive_timer)


_indexed = None


def indexed_functions():
    """The functions as the host indexes them (``get_functions`` may be called only once)."""
    global _indexed
    if _indexed is None:
        _indexed = app.get_functions()
    return _indexed
