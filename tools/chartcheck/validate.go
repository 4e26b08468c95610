package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// newObject returns an empty object of the Go type that apiVersion and kind
// name; every kind the chart may render is listed, anything else is an error.
func newObject(apiVersion, kind string) (any, bool) {
	switch apiVersion + "/" + kind {
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1/Secret":
		return &corev1.Secret{}, true
	case "v1/Service":
		return &corev1.Service{}, true
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, true
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, true
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, true
	case "rbac.authorization.k8s.io/v1/Role":
		return &rbacv1.Role{}, true
	case "rbac.authorization.k8s.io/v1/RoleBinding":
		return &rbacv1.RoleBinding{}, true
	case "cert-manager.io/v1/Certificate":
		return &certmanagerv1.Certificate{}, true
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, true
	}
	return nil, false
}

// object is one decoded manifest.
type object struct {
	kind string
	name string
	obj  any
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocuments splits a multi-document YAML stream, dropping documents
// that hold only comments or nothing.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, doc := range docSeparator.Split(string(data), -1) {
		empty := true
		for _, line := range strings.Split(doc, "\n") {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, []byte(doc))
		}
	}
	return docs
}

// validate strictly decodes every document, then checks the objects
// against each other. It returns the objects and every problem found.
func validate(data []byte) ([]object, []string) {
	var objs []object
	var problems []string
	for i, doc := range splitDocuments(data) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			problems = append(problems, fmt.Sprintf("document %d: %v", i+1, err))
			continue
		}
		obj, ok := newObject(tm.APIVersion, tm.Kind)
		if !ok {
			problems = append(problems, fmt.Sprintf("document %d: no schema for %s %s (add it to chartcheck)", i+1, tm.APIVersion, tm.Kind))
			continue
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			problems = append(problems, fmt.Sprintf("%s (document %d): %v", tm.Kind, i+1, err))
			continue
		}
		meta := obj.(metav1.Object)
		where := tm.Kind + " " + meta.GetName()
		for _, msg := range validation.IsDNS1123Subdomain(meta.GetName()) {
			problems = append(problems, fmt.Sprintf("%s: name: %s", where, msg))
		}
		for k, v := range meta.GetLabels() {
			for _, msg := range validation.IsQualifiedName(k) {
				problems = append(problems, fmt.Sprintf("%s: label %q: %s", where, k, msg))
			}
			for _, msg := range validation.IsValidLabelValue(v) {
				problems = append(problems, fmt.Sprintf("%s: label %s=%q: %s", where, k, v, msg))
			}
		}
		objs = append(objs, object{kind: tm.Kind, name: meta.GetName(), obj: obj})
	}
	if len(problems) == 0 {
		problems = checkTogether(objs)
	}
	return objs, problems
}

func find[T any](objs []object) []T {
	var out []T
	for _, o := range objs {
		if t, ok := o.obj.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// checkTogether checks what strict decoding cannot: that the objects fit
// each other and the chart's promises.
func checkTogether(objs []object) []string {
	var ps []string
	add := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }

	deployments := find[*appsv1.Deployment](objs)
	if len(deployments) != 1 {
		add("want exactly one Deployment, got %d", len(deployments))
		return ps
	}
	d := deployments[0]
	pod := d.Spec.Template
	podLabels := labels.Set(pod.Labels)
	selects := func(where string, sel *metav1.LabelSelector) {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			add("%s: selector: %v", where, err)
			return
		}
		if s.Empty() || !s.Matches(podLabels) {
			add("%s: selector %v does not select the Deployment's pods %v", where, s, podLabels)
		}
	}
	selects("Deployment "+d.Name, d.Spec.Selector)

	// Ports, volumes, probes and the security context of every container.
	podPorts := map[string]int32{}
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	volumes := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = true
	}
	psc := pod.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		add("Deployment %s: the pod must run as non-root with seccomp RuntimeDefault", d.Name)
	}
	for _, c := range all {
		where := fmt.Sprintf("Deployment %s, container %s", d.Name, c.Name)
		if c.Image == "" {
			add("%s: no image", where)
		}
		ports := map[string]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = true
			podPorts[p.Name] = p.ContainerPort
			if p.ContainerPort < 1 || p.ContainerPort > 65535 {
				add("%s: port %s out of range", where, p.Name)
			}
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				add("%s: mounts %s, which is not a volume of the pod", where, m.Name)
			}
		}
		for kind, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
			if p != nil && p.HTTPGet != nil && p.HTTPGet.Port.StrVal != "" && !ports[p.HTTPGet.Port.StrVal] {
				add("%s: %s probe port %s is not a port of the container", where, kind, p.HTTPGet.Port.StrVal)
			}
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 {
			add("%s: want a read-only root filesystem, no privilege escalation, all capabilities dropped", where)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			add("%s: want CPU and memory requests and a memory limit", where)
		}
	}
	var main *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == "embedgate" {
			main = &pod.Spec.Containers[i]
		}
	}
	if main == nil {
		add("Deployment %s: no container named embedgate", d.Name)
		return ps
	}
	for kind, p := range map[string]*corev1.Probe{"liveness": main.LivenessProbe, "readiness": main.ReadinessProbe} {
		want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[kind]
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port.StrVal != "admin" {
			add("Deployment %s: the %s probe must be GET %s on the admin port", d.Name, kind, want)
		}
	}

	// The drain fits in the termination grace period.
	if delay, grace, ok := drainTimes(objs); ok {
		tgps := int64(30)
		if pod.Spec.TerminationGracePeriodSeconds != nil {
			tgps = *pod.Spec.TerminationGracePeriodSeconds
		}
		if need := delay + grace; time.Duration(tgps)*time.Second <= need {
			add("Deployment %s: terminationGracePeriodSeconds %d does not exceed shutdown_delay + shutdown_grace = %s", d.Name, tgps, need)
		}
	} else {
		add("no ConfigMap carries a config.yaml with shutdown_delay and shutdown_grace")
	}

	// ConfigMaps the pod mounts and that the release renders exist.
	configMaps := map[string]bool{}
	for _, cm := range find[*corev1.ConfigMap](objs) {
		configMaps[cm.Name] = true
	}
	prefix := d.Name + "-"
	for _, v := range pod.Spec.Volumes {
		if v.ConfigMap != nil && strings.HasPrefix(v.ConfigMap.Name, prefix) && !configMaps[v.ConfigMap.Name] {
			add("Deployment %s: volume %s names ConfigMap %s, which is not rendered", d.Name, v.Name, v.ConfigMap.Name)
		}
	}
	if sa := pod.Spec.ServiceAccountName; sa != "" && sa != "default" {
		found := false
		for _, s := range find[*corev1.ServiceAccount](objs) {
			found = found || s.Name == sa
		}
		if !found && strings.HasPrefix(sa, d.Name) {
			add("Deployment %s: ServiceAccount %s is not rendered", d.Name, sa)
		}
	}

	services := find[*corev1.Service](objs)
	for _, s := range services {
		where := "Service " + s.Name
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) || len(s.Spec.Selector) == 0 {
			add("%s: selector %v does not select the pods", where, s.Spec.Selector)
		}
		for _, p := range s.Spec.Ports {
			if name := p.TargetPort.StrVal; name != "" {
				if _, ok := podPorts[name]; !ok {
					add("%s: targetPort %s is not a container port", where, name)
				}
			}
		}
	}
	for _, p := range find[*policyv1.PodDisruptionBudget](objs) {
		selects("PodDisruptionBudget "+p.Name, p.Spec.Selector)
	}
	for _, h := range find[*autoscalingv2.HorizontalPodAutoscaler](objs) {
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != d.Name {
			add("HorizontalPodAutoscaler %s: targets %s %s, not the Deployment", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
		}
		if d.Spec.Replicas != nil {
			add("Deployment %s: sets replicas while an HPA owns the count", d.Name)
		}
	}
	for _, n := range find[*networkingv1.NetworkPolicy](objs) {
		selects("NetworkPolicy "+n.Name, &n.Spec.PodSelector)
		for _, rule := range n.Spec.Ingress {
			for _, port := range rule.Ports {
				if port.Port != nil && port.Port.StrVal != "" {
					if _, ok := podPorts[port.Port.StrVal]; !ok {
						add("NetworkPolicy %s: ingress port %s is not a container port", n.Name, port.Port.StrVal)
					}
				}
			}
		}
	}
	for _, m := range find[*monitoringv1.ServiceMonitor](objs) {
		ok := false
		for _, s := range services {
			if !labels.SelectorFromSet(m.Spec.Selector.MatchLabels).Matches(labels.Set(s.Labels)) {
				continue
			}
			for _, p := range s.Spec.Ports {
				for _, e := range m.Spec.Endpoints {
					ok = ok || p.Name == e.Port
				}
			}
		}
		if !ok {
			add("ServiceMonitor %s: selects no Service port it scrapes", m.Name)
		}
	}
	for _, c := range find[*certmanagerv1.Certificate](objs) {
		mounted := false
		for _, v := range pod.Spec.Volumes {
			mounted = mounted || (v.Secret != nil && v.Secret.SecretName == c.Spec.SecretName)
		}
		if !mounted {
			add("Certificate %s: its Secret %s is not mounted by the pods", c.Name, c.Spec.SecretName)
		}
		if len(c.Spec.DNSNames) == 0 || c.Spec.IssuerRef.Name == "" {
			add("Certificate %s: wants DNS names and an issuer", c.Name)
		}
	}
	return ps
}

// drainTimes reads shutdown_delay and shutdown_grace from the rendered
// config.yaml.
func drainTimes(objs []object) (delay, grace time.Duration, ok bool) {
	for _, cm := range find[*corev1.ConfigMap](objs) {
		raw, found := cm.Data["config.yaml"]
		if !found {
			continue
		}
		var cfg struct {
			ShutdownDelay string `json:"shutdown_delay"`
			ShutdownGrace string `json:"shutdown_grace"`
		}
		if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil {
			return 0, 0, false
		}
		var err1, err2 error
		delay, err1 = time.ParseDuration(cfg.ShutdownDelay)
		grace, err2 = time.ParseDuration(cfg.ShutdownGrace)
		return delay, grace, err1 == nil && err2 == nil
	}
	return 0, 0, false
}
