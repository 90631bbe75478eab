"""serviceAccount.*: the three services run under the chart's own ServiceAccount, without a
token and without any Role; Patroni's per-tier accounts are left as they are."""

from __future__ import annotations

from .conftest import Render, RenderFn, pod_spec

SERVICES = ("critical", "ml", "cache")


def service_pods(r: Render) -> dict[str, dict[str, object]]:
    return {svc: pod_spec(r.get("Deployment", f"strata-{svc}")) for svc in SERVICES}


def test_default_account_is_created_without_a_token_or_a_role(rendered: Render) -> None:
    sa = rendered.get("ServiceAccount", "strata")
    assert sa["automountServiceAccountToken"] is False
    assert sa["metadata"]["labels"]["app.kubernetes.io/instance"] == "strata"
    for svc, spec in service_pods(rendered).items():
        assert spec["serviceAccountName"] == "strata", svc
        assert spec["automountServiceAccountToken"] is False, svc
    bound = [
        subject["name"]
        for binding in [*rendered.kind("RoleBinding"), *rendered.kind("ClusterRoleBinding")]
        for subject in binding.get("subjects", [])
    ]
    assert "strata" not in bound


def test_an_existing_account_is_used_and_none_is_created(render: RenderFn) -> None:
    r = render(None, sets=("serviceAccount.create=false", "serviceAccount.name=apps"))
    assert "strata" not in r.names("ServiceAccount")
    assert {spec["serviceAccountName"] for spec in service_pods(r).values()} == {"apps"}


def test_without_create_or_name_the_pods_use_default(render: RenderFn) -> None:
    r = render(None, sets=("serviceAccount.create=false",))
    assert "strata" not in r.names("ServiceAccount")
    assert {spec["serviceAccountName"] for spec in service_pods(r).values()} == {"default"}


def test_name_annotations_and_token_are_configurable(render: RenderFn) -> None:
    r = render(
        None,
        sets=(
            "serviceAccount.name=strata-apps",
            "serviceAccount.annotations.iam\\.example\\.com/role=apps",
            "serviceAccount.automountServiceAccountToken=true",
            "commonAnnotations.team=ledger",
        ),
    )
    sa = r.get("ServiceAccount", "strata-apps")
    assert sa["metadata"]["annotations"] == {"iam.example.com/role": "apps", "team": "ledger"}
    assert sa["automountServiceAccountToken"] is True
    for svc, spec in service_pods(r).items():
        assert spec["serviceAccountName"] == "strata-apps", svc
        assert spec["automountServiceAccountToken"] is True, svc


def test_patroni_members_keep_their_own_accounts(rendered: Render) -> None:
    for sts in rendered.kind("StatefulSet"):
        name = sts["metadata"]["name"]
        if name.startswith("strata-postgresql-"):
            spec = pod_spec(sts)
            assert spec["serviceAccountName"] == name
            assert spec["automountServiceAccountToken"] is True
