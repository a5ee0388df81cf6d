"""The control panel takes every range from urlstate.SPEC."""
from visualizer import ids, layout
from visualizer.urlstate import DEFAULTS, SPEC


def _props_by_id(node, out):
    if hasattr(node, "to_plotly_json"):
        props = node.to_plotly_json()["props"]
        if "id" in props:
            out[props["id"]] = props
        children = props.get("children")
        for child in children if isinstance(children, list) else [children]:
            _props_by_id(child, out)
    return out


def test_every_numeric_control_spans_its_spec_range():
    props = _props_by_id(layout.controls(DEFAULTS), {})
    checked = 0
    for name, spec in SPEC.items():
        control = props.get(ids.CONTROL_IDS[name])
        if control is None or spec[0] not in ("int", "float", "optint", "optfloat"):
            continue
        if control.get("type") == "text":  # an optional number: a text box, validated against SPEC
            assert spec[0].startswith("opt"), name
            checked += 1
            continue
        assert (control["min"], control["max"]) == (spec[1], spec[2]), name
        if control.get("marks"):
            assert min(control["marks"]) == spec[1] and max(control["marks"]) == spec[2], name
        checked += 1
    assert checked == 10  # 5 sliders and 5 number boxes in the sidebar (steps sits in the training card)
