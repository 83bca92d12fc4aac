"""Is one OpenAPI document a compatible superset of another?"""


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
