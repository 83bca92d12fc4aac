"""OpenAPI checks: is one document a compatible superset of another; does a body carry
every field its schema requires?"""


def _keyed(items, key):
    return {key(item): item for item in items}


def superset_problems(base, full, where="$") -> list[str]:
    """Every way ``full`` removes or changes something ``base`` has (empty: compatible).

    Objects may gain keys; parameter lists may gain parameters; ``required`` lists and
    tag lists may gain entries; every other list and every scalar must be equal.
    """
    if isinstance(base, dict):
        if not isinstance(full, dict):
            return [f"{where}: object became {type(full).__name__}"]
        problems = []
        for key, value in base.items():
            if key not in full:
                problems.append(f"{where}.{key}: removed")
            elif key == "required" and isinstance(value, list):
                missing = set(value) - set(full[key])
                problems += [f"{where}.required: {name} no longer required" for name in missing]
            elif key == "parameters":
                problems += _list_superset(value, full[key], f"{where}.parameters", _param)
            elif key == "tags" and where == "$":
                problems += _list_superset(value, full[key], "$.tags", lambda t: t["name"])
            else:
                problems += superset_problems(value, full[key], f"{where}.{key}")
        return problems
    if base != full:
        return [f"{where}: {base!r} became {full!r}"]
    return []


def _param(item):
    return (item.get("name"), item.get("in"), item.get("$ref"))


def _list_superset(base, full, where, key) -> list[str]:
    full_items = _keyed(full, key)
    problems = []
    for name, item in _keyed(base, key).items():
        if name not in full_items:
            problems.append(f"{where}: {name} removed")
        else:
            problems += superset_problems(item, full_items[name], f"{where}[{name}]")
    return problems


def missing_required(spec: dict, schema: dict, value, where: str = "$") -> list[str]:
    """Every field ``value`` lacks that ``schema`` (of ``spec``'s OpenAPI document) marks
    required, at any depth, and every ``null`` where the schema does not allow one."""
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    if "allOf" in schema:
        return [p for part in schema["allOf"] for p in missing_required(spec, part, value, where)]
    if value is None:
        return [] if schema.get("nullable") else [f"{where}: null"]
    problems = []
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        problems += [
            f"{where}.{name}: missing" for name in schema.get("required", ()) if name not in value
        ]
        for name, item in value.items():
            if name in properties:
                problems += missing_required(spec, properties[name], item, f"{where}.{name}")
            elif isinstance(schema.get("additionalProperties"), dict):
                problems += missing_required(
                    spec, schema["additionalProperties"], item, f"{where}.{name}"
                )
    elif isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value):
            problems += missing_required(spec, schema["items"], item, f"{where}[{n}]")
    return problems
