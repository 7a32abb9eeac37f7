"""Checks properties of the rendered Kubernetes manifests that schema validation and checkov do not:
the defects an operator review found once, so they cannot come back.

    python3 scripts/check-manifests.py rendered.yaml [...]

For each file (one rendered overlay):
- every pod that runs as a non-root user and mounts a Secret sets `fsGroup` (Secret files are
  mode 0400: without the group the process cannot read them);
- every pod that a NetworkPolicy restricts on egress may reach DNS (UDP 53): a migration Job on
  a first install runs before the base's policies exist and must resolve the database's name;
- no Deployment that a HorizontalPodAutoscaler scales sets `replicas` (each apply would reset
  the autoscaler);
- every Deployment with more than one replica (or an autoscaler) spreads them over nodes (`topologySpreadConstraints` on
  `kubernetes.io/hostname`);
- every Deployment with a `metrics` port is reachable there: a Service port targets it and, when
  ingress is restricted, a NetworkPolicy admits that port.
Exits 1 and names each problem.
"""

import sys

import yaml


def matches(selector, labels):
    """Whether a label selector (matchLabels only, as these manifests use) selects `labels`."""
    if selector is None:
        return False
    wanted = selector.get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in wanted.items()) and not selector.get("matchExpressions")


def pods(documents):
    """(kind/name, pod template spec, pod labels) of each workload."""
    for d in documents:
        kind = d.get("kind")
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            template = d["spec"]["template"]
            yield f"{kind}/{d['metadata']['name']}", template["spec"], template["metadata"].get("labels", {})


def allows_dns(policy):
    for rule in policy["spec"].get("egress") or []:
        ports = rule.get("ports")
        if ports is None:
            return True
        if any(p.get("port") == 53 and p.get("protocol", "TCP") == "UDP" for p in ports):
            return True
    return False


def check(path):
    with open(path, encoding="utf-8") as f:
        documents = [d for d in yaml.safe_load_all(f) if d]
    policies = [d for d in documents if d.get("kind") == "NetworkPolicy"]
    problems = []

    for name, spec, labels in pods(documents):
        context = spec.get("securityContext") or {}
        mounts_secret = any("secret" in v for v in spec.get("volumes") or [])
        if mounts_secret and context.get("runAsUser", 0) != 0 and "fsGroup" not in context:
            problems.append(f"{name}: mounts a Secret as user {context.get('runAsUser')} without fsGroup")
        egress = [p for p in policies
                  if "Egress" in p["spec"].get("policyTypes", []) and matches(p["spec"].get("podSelector"), labels)]
        if egress and not any(allows_dns(p) for p in egress):
            problems.append(f"{name}: egress is restricted by {[p['metadata']['name'] for p in egress]} "
                            "and none allows DNS (UDP 53)")

    scaled = {(h["spec"]["scaleTargetRef"]["kind"], h["spec"]["scaleTargetRef"]["name"])
              for h in documents if h.get("kind") == "HorizontalPodAutoscaler"}
    services = [d for d in documents if d.get("kind") == "Service"]
    for d in documents:
        if d.get("kind") != "Deployment":
            continue
        name = d["metadata"]["name"]
        spec = d["spec"]["template"]["spec"]
        labels = d["spec"]["template"]["metadata"].get("labels", {})
        if ("Deployment", name) in scaled and "replicas" in d["spec"]:
            problems.append(f"Deployment/{name}: sets replicas while a HorizontalPodAutoscaler owns the count")
        keys = {c.get("topologyKey") for c in spec.get("topologySpreadConstraints") or []}
        several = ("Deployment", name) in scaled or d["spec"].get("replicas", 1) > 1
        if several and "kubernetes.io/hostname" not in keys:
            problems.append(f"Deployment/{name}: no topology spread over nodes (kubernetes.io/hostname)")
        metrics = [p for c in spec["containers"] for p in c.get("ports", []) if p.get("name") == "metrics"]
        for port in metrics:
            number = port["containerPort"]
            exposed = any(
                matches({"matchLabels": s["spec"].get("selector") or {}}, labels)
                and any(sp.get("targetPort") in ("metrics", number) for sp in s["spec"].get("ports", []))
                for s in services)
            if not exposed:
                problems.append(f"Deployment/{name}: no Service port targets its metrics port {number}")
            ingress = [p for p in policies
                       if "Ingress" in p["spec"].get("policyTypes", []) and matches(p["spec"].get("podSelector"), labels)]
            admitted = any(
                any(pp.get("port") in (number, "metrics") for pp in rule.get("ports") or [{"port": number}])
                for p in ingress for rule in p["spec"].get("ingress") or [])
            if ingress and not admitted:
                problems.append(f"Deployment/{name}: no NetworkPolicy admits scrapes on port {number}")
    return problems


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    problems = [f"{path}: {p}" for path in sys.argv[1:] for p in check(path)]
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(f"manifest properties hold in {len(sys.argv) - 1} rendered overlays")


if __name__ == "__main__":
    main()
