"""The OpenAPI schema tells the truth: uploads are files, what can be null is nullable, the
error answers are described and the training parameters' ranges are the ones training
takes. (tests/integration/test_api_schema.py holds the live API to it, with schemathesis.)"""

import pytest
from drf_spectacular.generators import SchemaGenerator

from training import services
from training.ml.config import limits


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def component(schema, ref):
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def request_properties(schema, path, media="multipart/form-data"):
    body = schema["paths"][path]["post"]["requestBody"]["content"][media]["schema"]
    return component(schema, body["$ref"])["properties"]


@pytest.mark.parametrize(
    "path, field",
    [
        ("/api/v1/identify/", "image"),
        ("/api/v1/imports/", "archive"),
        ("/api/v1/identities/{identity_id}/images/", "images"),
    ],
)
def test_upload_fields_are_binary_files_so_a_generated_client_can_send_them(schema, path, field):
    prop = request_properties(schema, path)[field]
    prop = prop.get("items", prop)
    assert (prop["type"], prop["format"]) == ("string", "binary")


@pytest.mark.parametrize(
    "component_name, field",
    [
        ("TrainingJob", "created_by"),
        ("Identity", "created_by"),
        ("BulkImport", "created_by"),
        ("Prediction", "created_by"),
        ("PredictionFace", "identity_name"),
        ("PredictionFace", "reviewed_by"),
    ],
)
def test_fields_the_api_answers_null_in_are_nullable(schema, component_name, field):
    assert schema["components"]["schemas"][component_name]["properties"][field]["nullable"]


def test_every_operation_describes_the_errors_a_caller_can_get(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"400", "401", "403"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            error = operation["responses"]["401"]["content"]["application/json"]["schema"]
            assert error["$ref"].endswith("/Error")
    assert "429" in schema["paths"]["/api/v1/identify/"]["post"]["responses"]


def integer_ranges(schema):
    props = request_properties(schema, "/api/v1/training-jobs/", "application/json")
    return {name: (p["minimum"], p["maximum"]) for name, p in props.items() if "maximum" in p}


def test_the_schema_states_the_training_parameters_ranges(schema):
    props = request_properties(schema, "/api/v1/training-jobs/", "application/json")
    assert integer_ranges(schema)["epochs"] == limits("epochs")
    assert (props["learning_rate"]["minimum"], props["learning_rate"]["exclusiveMinimum"]) == (
        0,
        True,
    )
    assert (props["val_fraction"]["maximum"], props["val_fraction"]["exclusiveMaximum"]) == (
        1,
        True,
    )


@pytest.mark.parametrize("name", ["epochs", "batch_size", "image_size", "seed"])
def test_the_ranges_in_the_schema_are_the_ones_training_accepts(schema, name):
    low, high = integer_ranges(schema)[name]
    # The face network takes only its own input size; a ResNet takes the range.
    extra = {"architecture": "resnet18"} if name == "image_size" else {}
    for accepted in (low, high):
        services.default_params(**extra, **{name: accepted})
    for refused in (low - 1, high + 1):
        with pytest.raises(ValueError):
            services.default_params(**extra, **{name: refused})
