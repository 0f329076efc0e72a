"""Python client of the Data Pipeline API (`DataPipelineClient`) and the shapes it returns."""
from data_pipeline.client.http import (DEFAULT_URL, DataPipelineClient, DataPipelineConnectionError, DataPipelineError,
                                       WaitTimeout)

__all__ = ["DEFAULT_URL", "DataPipelineClient", "DataPipelineConnectionError", "DataPipelineError", "WaitTimeout"]
