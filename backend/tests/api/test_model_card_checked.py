"""A model card that fails its schema stops the API (issue 29, finding 7): `Verifier.from_files` requires the weights'
sha256, start-up (`verifier_warm`) and `manage.py check --deploy` refuse the card naming the field, and health says
which model and weights were loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from sigml.errors import ModelLoadError
from sigml.inference import Verifier
from sigml.modelcard import card_path_for
from signatures.model_loader import verifier_warm

EDITS = {  # the card next to the test model, edited as a deployment could break it
    "no sha256": lambda d: {**d, "weights": {k: v for k, v in d["weights"].items() if k != "sha256"}},
    "max_pixels 0": lambda d: {**d, "preprocessing": {**d["preprocessing"], "max_pixels": 0}},
    "NaN threshold": lambda d: {**d, "threshold": float("nan"), "thresholds": {}},
}


def copy_model(test_model_path: Path, folder: Path, edit) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / test_model_path.name
    shutil.copy(test_model_path, weights)
    card_path_for(weights).write_text(json.dumps(edit(json.loads(card_path_for(test_model_path).read_text()))))
    return weights


def test_serving_requires_the_weights_checksum(test_model_path, tmp_path):
    weights = copy_model(test_model_path, tmp_path, EDITS["no sha256"])
    with pytest.raises(ModelLoadError) as caught:
        Verifier.from_files(weights)
    assert "weights.sha256" in str(caught.value) and "required" in str(caught.value)


@pytest.mark.django_db
@pytest.mark.parametrize("case,field", [("no sha256", "weights.sha256"), ("max_pixels 0", "preprocessing.max_pixels"),
                                        ("NaN threshold", "threshold")])
def test_the_api_refuses_to_start_and_check_deploy_fails(settings, test_model_path, tmp_path, case, field):
    settings.SIGVER_MODEL_PATH = copy_model(test_model_path, tmp_path / case.replace(" ", "_"), EDITS[case])
    with pytest.raises(ImproperlyConfigured) as caught:  # a failed load is not cached: no other test is affected
        verifier_warm()
    assert str(caught.value).startswith("Cannot start the signature API") and field in str(caught.value)
    errors = [e for e in run_checks(include_deployment_checks=True, tags=["sigver"]) if e.id == "sigver.E001"]
    assert errors and field in errors[0].msg


@pytest.mark.django_db
def test_health_reports_what_was_loaded(client, verifier):
    body = client.get("/api/health/").json()
    assert body["model_version"] == verifier.model_version
    assert body["model_sha256"] == verifier.card.weights["sha256"]
