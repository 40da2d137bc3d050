"""The code MLflow runs to load the model ``model`` (models from code)."""

from mlflow.models import set_model

from rating_prediction.serving.pyfunc import ServedModelPyfunc

set_model(ServedModelPyfunc())
