"""The OpenAI schema helper accepts what the spec allows and rejects what it forbids."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.schemas import _validator, provenance, schema_names, validate_openai


def minimal_batch() -> dict[str, Any]:
    """A Batch with only its required fields."""
    return {
        "id": "batch_abc123", "object": "batch", "endpoint": "/v1/chat/completions",
        "input_file_id": "file-abc123", "completion_window": "24h", "status": "validating",
        "created_at": 1_711_471_533,
    }


def minimal_file() -> dict[str, Any]:
    """An OpenAIFile with only its required fields."""
    return {"id": "file-abc123", "object": "file", "bytes": 120, "created_at": 1_711_471_533,
            "filename": "batch.jsonl", "purpose": "batch", "status": "processed"}


def test_minimal_batch_passes() -> None:
    """A Batch with only its required fields is valid."""
    validate_openai("Batch", minimal_batch())


def test_batch_with_nulls_for_unset_fields_passes() -> None:
    """A Batch as the SDK serialises it, with null for every unset optional field, is valid."""
    batch = openai.types.Batch.model_validate(minimal_batch())
    body = batch.model_dump(mode="json")
    assert body["output_file_id"] is None
    assert body["errors"] is None
    validate_openai("Batch", body)


def test_batch_missing_required_field_fails() -> None:
    """A Batch without `input_file_id` is rejected, naming the property."""
    batch = minimal_batch()
    del batch["input_file_id"]
    with pytest.raises(AssertionError, match=r"\$: 'input_file_id' is a required property"):
        validate_openai("Batch", batch)


def test_batch_wrong_enum_value_fails() -> None:
    """A Batch status outside the spec's enum is rejected, naming the path."""
    with pytest.raises(AssertionError, match=r"\$\.status: 'done' is not one of"):
        validate_openai("Batch", minimal_batch() | {"status": "done"})


def test_batch_wrong_type_fails() -> None:
    """A Batch timestamp sent as a string is rejected."""
    with pytest.raises(AssertionError, match=r"\$\.created_at: '1' is not of type 'integer'"):
        validate_openai("Batch", minimal_batch() | {"created_at": "1"})


def test_null_required_field_fails() -> None:
    """Null is tolerated only for optional properties: a null required `id` is rejected."""
    with pytest.raises(AssertionError, match=r"\$\.id: None is not of type 'string'"):
        validate_openai("Batch", minimal_batch() | {"id": None})


def test_optional_field_of_wrong_type_fails() -> None:
    """An optional property that is present and not null is checked as usual."""
    with pytest.raises(AssertionError, match=r"\$\.output_file_id: 5 is not of type 'string'"):
        validate_openai("Batch", minimal_batch() | {"output_file_id": 5})


def test_nested_error_is_reported_with_its_path() -> None:
    """An error inside a referenced schema (BatchRequestCounts) is reported at its own path."""
    batch = minimal_batch() | {"request_counts": {"total": 2, "completed": 1}}
    with pytest.raises(AssertionError, match=r"\$\.request_counts: 'failed' is a required"):
        validate_openai("Batch", batch)


def test_minimal_file_passes() -> None:
    """An OpenAIFile with only its required fields is valid."""
    validate_openai("OpenAIFile", minimal_file())


def test_file_wrong_purpose_fails() -> None:
    """An OpenAIFile purpose outside the spec's enum is rejected."""
    with pytest.raises(AssertionError, match=r"\$\.purpose: 'batches' is not one of"):
        validate_openai("OpenAIFile", minimal_file() | {"purpose": "batches"})


def test_error_response_passes() -> None:
    """OpenAI's error envelope, with null `param` and `code`, is valid."""
    validate_openai("ErrorResponse", {"error": {
        "message": "Invalid file format.", "type": "invalid_request_error",
        "param": None, "code": None}})


def test_error_response_missing_message_fails() -> None:
    """An error envelope without `message` is rejected."""
    with pytest.raises(AssertionError, match=r"\$\.error: 'message' is a required property"):
        validate_openai("ErrorResponse", {"error": {
            "type": "invalid_request_error", "param": None, "code": None}})


def test_batch_request_output_lines_pass() -> None:
    """Batch output and error lines, with a `nullable` (OpenAPI 3.0) field null, are valid."""
    validate_openai("BatchRequestOutput", {
        "id": "batch_req_1", "custom_id": "request-1", "error": None,
        "response": {"status_code": 200, "request_id": "req_1", "body": {"id": "chatcmpl-1"}}})
    validate_openai("manual_spec.BatchRequestOutput", {
        "id": "batch_req_2", "custom_id": "request-2", "response": None,
        "error": {"code": "batch_expired", "message": "This request could not be executed."}})


def test_batch_request_output_wrong_type_fails() -> None:
    """A batch output line whose `status_code` is a string is rejected."""
    line = {"id": "batch_req_1", "custom_id": "request-1", "error": None,
            "response": {"status_code": "200", "request_id": "req_1", "body": {}}}
    with pytest.raises(AssertionError, match=r"\$\.response\.status_code: '200' is not of type"):
        validate_openai("BatchRequestOutput", line)


def test_batch_request_input_wrong_method_fails() -> None:
    """A batch input line with a method other than POST is rejected."""
    with pytest.raises(AssertionError, match=r"\$\.method: 'GET' is not one of \['POST'\]"):
        validate_openai("BatchRequestInput", {
            "custom_id": "request-1", "method": "GET", "url": "/v1/chat/completions"})


def test_recursive_compound_filter_is_checked() -> None:
    """Nested CompoundFilters ($recursiveRef) validate, and a bad nested filter is caught."""
    nested = {"type": "or", "filters": [{"type": "eq", "key": "lang", "value": "en"}]}
    validate_openai("CompoundFilter", {
        "type": "and", "filters": [{"type": "eq", "key": "year", "value": 2026}, nested]})
    with pytest.raises(AssertionError, match=r"\$\.filters\[0\]\.filters\[0\]"):
        validate_openai("CompoundFilter", {"type": "and", "filters": [
            {"type": "or", "filters": [{"type": "eq"}]}]})


def test_unknown_schema_name_raises_key_error() -> None:
    """Asking for a schema the file does not hold is an error, not a pass."""
    with pytest.raises(KeyError, match="NoSuchSchema"):
        validate_openai("NoSuchSchema", {})


def test_validators_are_cached() -> None:
    """Each schema is compiled once."""
    assert _validator("Batch") is _validator("Batch")


def test_file_holds_the_roots_and_their_provenance() -> None:
    """Every root schema is stored, with its source commit and MIT licence recorded."""
    names = set(schema_names())
    sources = provenance()["sources"]
    for source in sources.values():
        assert source["licence"] == "MIT"
        assert len(source["commit"]) == 40
        assert {source["schema_prefix"] + root for root in source["roots"]} <= names
    assert sources["main"]["commit"] == "f85dbe223d40e1a31cba812ab2d755c7e98a92a3"
    assert sources["manual_spec"]["commit"] == "498c71ddf6f1c45b983f972ccabca795da211a3e"
