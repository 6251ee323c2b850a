"""Kubernetes pods explained by the diagnosis engine (`infraveil doctor k8s`, DESIGN.md §3).

Every way in ends in the same `PodEvidence` (evidence.py): the pod and its events as the API
returns them, and the logs of its containers.

    live.py      the user's cluster, through the `kubernetes` client and their kubeconfig
    bundle.py    a bundle directory or .tar.gz (read, and written by `doctor k8s collect`)
    describe.py  text pasted from `kubectl describe pod` (and `kubectl logs --previous`)
    facts.py     PodEvidence -> one diagnosis `Facts` per container
    doctor.py    PodEvidence -> PodReport: a finding per failing container, with its fix

Nothing here talks to the agent: this package sits beside runtime/store, above core.
"""
