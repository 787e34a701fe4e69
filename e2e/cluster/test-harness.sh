#!/usr/bin/env bash
# test-harness.sh - prove the local cluster works (run after `up`): real pods on node-1, the
# "Share Process Namespace" walk-through, rollouts, deletions, and (if simulated nodes exist) a pod on a
# simulated node. Prints OK/FAIL per check; exits 1 if any check failed. Uses its own namespace and
# deletes it at the end. KUBECONFIG from the environment (default: this cluster's admin kubeconfig).
# ok() always succeeds, so `cond && ok .. || fail ..` is an if-then-else here
# shellcheck disable=SC2015,SC2001
set -uo pipefail
user_kubeconfig=${KUBECONFIG:-}
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
[ -n "$user_kubeconfig" ] && KUBECONFIG=$user_kubeconfig
# shellcheck disable=SC1091
[ -f "$STATE/images.env" ] && . "$STATE/images.env"
NS=dbgs-harness-$$
K=(kube -n "$NS")
FAILS=0
now() { date +%s%N; }
secs() { echo "$(( ($(now) - $1) / 1000000 )) ms"; }
ok() { echo "OK   $*"; }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }
# until_ok TIMEOUT_S CMD... : poll CMD every 0.2 s
until_ok() {
  local end=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.2; done
}
cleanup() { kube delete ns "$NS" --wait=false >/dev/null 2>&1; }
trap cleanup EXIT

kube get --raw /readyz >/dev/null 2>&1 || { echo "FAIL apiserver not reachable (KUBECONFIG=$KUBECONFIG); run e2e/cluster/up"; exit 1; }
kube create ns "$NS" >/dev/null || { echo "FAIL cannot create namespace $NS"; exit 1; }
until_ok 30 kube -n "$NS" get serviceaccount default || fail "no default ServiceAccount in $NS"
echo "== namespace $NS, images: $NGINX_IMAGE $BUSYBOX_IMAGE (sandbox $PAUSE_IMAGE)"

deployment() { # replicas with_shell(0/1)
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: $1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {$REAL_NODE_LABEL: "true"}
      terminationGracePeriodSeconds: 5
      shareProcessNamespace: $([ "$2" = 1 ] && echo true || echo false)
      containers:
      - name: nginx
        image: $NGINX_IMAGE
        imagePullPolicy: Never
        ports: [{containerPort: 80}]
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
        resources: {requests: {cpu: 50m, memory: 32Mi}, limits: {cpu: 200m, memory: 64Mi}}
YAML
  [ "$2" = 1 ] && cat <<YAML
      - name: shell
        image: $BUSYBOX_IMAGE
        imagePullPolicy: Never
        command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
        securityContext: {capabilities: {add: [SYS_PTRACE]}}
YAML
  return 0
}
# names of the web pods that are not terminating
web_pods() { "${K[@]}" get pods -l app=web -o go-template='{{range .items}}{{if not .metadata.deletionTimestamp}}{{.metadata.name}} {{end}}{{end}}'; }

echo "== 1. Deployment of $NGINX_IMAGE"
t=$(now)
if deployment 2 0 | "${K[@]}" apply -f - >/dev/null && "${K[@]}" wait --for=condition=Available deploy/web --timeout=120s >/dev/null \
   && "${K[@]}" rollout status deploy/web --timeout=60s >/dev/null; then
  ok "Deployment web (2 replicas) Available in $(secs "$t")"
  good=0
  for p in $(web_pods); do
    ps_out=$("${K[@]}" exec "$p" -c nginx -- ps ax 2>&1)
    ip=$("${K[@]}" get pod "$p" -o jsonpath='{.status.podIP}')
    code=$(curl -s -m 3 -o /dev/null -w '%{http_code}' "http://$ip/")
    if grep -q 'nginx: master process' <<<"$ps_out" && grep -q 'nginx: worker process' <<<"$ps_out" && [ "$code" = 200 ]; then
      good=$((good + 1))
    else
      echo "     $p: http $code; ps: $ps_out"
    fi
  done
  [ "$good" = 2 ] && ok "both pods run real nginx master+worker processes and answer HTTP 200 on their pod IPs" \
    || fail "only $good/2 pods run nginx and serve HTTP"
else
  fail "Deployment web not Available: $("${K[@]}" get pods -o wide 2>&1)"
fi

echo "== 2. shareProcessNamespace pod (nginx + busybox shell with SYS_PTRACE)"
t=$(now)
"${K[@]}" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: nginx}
spec:
  nodeSelector: {$REAL_NODE_LABEL: "true"}
  shareProcessNamespace: true
  terminationGracePeriodSeconds: 5
  containers:
  - name: nginx
    image: $NGINX_IMAGE
    imagePullPolicy: Never
  - name: shell
    image: $BUSYBOX_IMAGE
    imagePullPolicy: Never
    securityContext: {capabilities: {add: [SYS_PTRACE]}}
    stdin: true
    tty: true
YAML
if "${K[@]}" wait --for=condition=Ready pod/nginx --timeout=60s >/dev/null; then
  ok "pod nginx Ready in $(secs "$t")"
  ps_out=$("${K[@]}" exec nginx -c shell -- ps ax 2>&1); echo "$ps_out" | sed 's/^/     /'
  master=$(awk '/nginx: master process/ && !/awk/ {print $1; exit}' <<<"$ps_out")
  if grep -qE '^ *1 +[^ ]+ +[^ ]+ +/pause$|^ *1 +[^ ]+ +/pause$' <<<"$ps_out" && [ -n "$master" ]; then
    ok "kubectl exec nginx -c shell -- ps ax: /pause is PID 1, nginx master is PID $master"
  else
    fail "ps ax in shell does not list /pause as PID 1 and the nginx master"
  fi
  if [ -n "$master" ]; then
    workers() { "${K[@]}" exec nginx -c shell -- ps ax | awk '/nginx: worker process/ {print $1}' | sort | tr '\n' ' '; }
    before=$(workers)
    new_worker() { local w; for w in $(workers); do grep -qw "$w" <<<"$before" || return 0; done; return 1; }
    t=$(now)
    if "${K[@]}" exec nginx -c shell -- kill -HUP "$master" && until_ok 15 new_worker; then
      ok "kill -HUP $master: nginx reloaded, workers $before-> $(workers)in $(secs "$t")"
    else
      fail "kill -HUP $master: no new nginx worker within 15 s (before: $before, now: $(workers))"
    fi
    conf=$("${K[@]}" exec nginx -c shell -- head "/proc/$master/root/etc/nginx/nginx.conf" 2>&1)
    if grep -q '^user www-data;' <<<"$conf"; then
      ok "head /proc/$master/root/etc/nginx/nginx.conf prints the config"; sed 's/^/     /' <<<"$conf" | head -3
    else
      fail "head /proc/$master/root/etc/nginx/nginx.conf: $conf"
    fi
  fi
  tty_out=$("$CLUSTER_DIR/tty-drive" 'ps ax' 'exit' -- "$KUBECTL" --kubeconfig "$KUBECONFIG" --cache-dir "$KUBECACHEDIR" \
            -n "$NS" exec -it nginx -c shell -- sh 2>&1)
  grep -q 'nginx: master' <<<"$tty_out" && ok "kubectl exec -it (pseudo-terminal) into shell works" \
    || fail "kubectl exec -it: $tty_out"
else
  fail "pod nginx not Ready: $("${K[@]}" describe pod nginx 2>&1 | tail -15)"
fi

echo "== 3. template change rolls out new real pods"
old=$(web_pods)
t=$(now)
if deployment 2 1 | "${K[@]}" apply -f - >/dev/null && "${K[@]}" rollout status deploy/web --timeout=120s >/dev/null; then
  ok "rollout (+shell container, shareProcessNamespace) complete in $(secs "$t")"
  # shellcheck disable=SC2086
  "${K[@]}" wait --for=delete pod $old --timeout=60s >/dev/null 2>&1 && ok "old pods gone $(secs "$t") after the change" \
    || fail "old pods still there: $("${K[@]}" get pods 2>&1)"
  good=0
  new=$(web_pods)
  for p in $new; do
    grep -qw "$p" <<<"$old" && continue
    [ "$("${K[@]}" get pod "$p" -o jsonpath='{.status.containerStatuses[*].ready}')" = "true true" ] \
      && "${K[@]}" exec "$p" -c shell -- ps ax | grep -q 'nginx: master process' && good=$((good + 1))
  done
  [ "$good" -ge 2 ] && ok "new pods ($new) are 2/2 and their shell container sees the nginx processes" \
    || fail "new pods not 2/2 or shell does not see nginx: $("${K[@]}" get pods -o wide 2>&1)"
else
  fail "rollout did not complete: $("${K[@]}" get pods -o wide 2>&1)"
fi

echo "== 4. deletions complete (no pod stuck in Terminating)"
t=$(now)
pods=$(web_pods)
# shellcheck disable=SC2086
if [ -n "$pods" ] && "${K[@]}" delete pod $pods --wait=true --timeout=60s >/dev/null; then
  ok "deleted $(wc -w <<<"$pods") deployment pods in $(secs "$t")"
else
  fail "deleting deployment pods did not complete: $("${K[@]}" get pods 2>&1)"
fi
"${K[@]}" wait --for=condition=Available deploy/web --timeout=60s >/dev/null && ok "replacement pods Available" || fail "replacements not Available"
t=$(now)
"${K[@]}" delete deploy web --wait=true --timeout=60s >/dev/null
"${K[@]}" delete pod nginx --wait=true --timeout=60s >/dev/null 2>&1
no_pods() { [ -z "$("${K[@]}" get pods -o name 2>/dev/null)" ]; }
until_ok 60 no_pods && ok "deployment + nginx pod deleted, no pods left in $(secs "$t")" \
  || fail "pods left: $("${K[@]}" get pods --no-headers 2>&1)"

SIM=$(kube get nodes -l "$SIM_NODE_LABEL=true" -o name 2>/dev/null | wc -l)
if [ "$SIM" -gt 0 ]; then
  echo "== 5. simulated nodes ($SIM)"
  t=$(now)
  "${K[@]}" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: on-sim}
spec:
  nodeSelector: {kubernetes.io/hostname: ${SIM_NODE_PREFIX}1}
  tolerations: [{key: ${SIM_NODE_TAINT%%=*}, operator: Exists, effect: NoSchedule}]
  containers:
  - {name: c, image: $BUSYBOX_IMAGE, imagePullPolicy: Never, command: ["sleep", "3600"]}
YAML
  if "${K[@]}" wait --for=condition=Ready pod/on-sim --timeout=60s >/dev/null \
     && [ "$("${K[@]}" get pod on-sim -o jsonpath='{.spec.nodeName} {.status.phase}')" = "${SIM_NODE_PREFIX}1 Running" ]; then
    ok "pod scheduled to ${SIM_NODE_PREFIX}1 is Running/Ready in $(secs "$t")"
  else
    fail "pod on ${SIM_NODE_PREFIX}1 not Running: $("${K[@]}" get pod on-sim -o wide 2>&1)"
  fi
  t=$(now)
  "${K[@]}" delete pod on-sim --wait=true --timeout=30s >/dev/null && ok "pod on ${SIM_NODE_PREFIX}1 deleted in $(secs "$t")" \
    || fail "pod on ${SIM_NODE_PREFIX}1 stuck in deletion"
fi

echo "== cleanup"
t=$(now)
kube delete ns "$NS" --wait=true --timeout=60s >/dev/null && ok "namespace $NS deleted in $(secs "$t")" || fail "namespace $NS not deleted"
trap - EXIT
if [ "$FAILS" -gt 0 ]; then echo "RESULT: $FAILS check(s) FAILED"; exit 1; fi
echo "RESULT: all checks passed"
