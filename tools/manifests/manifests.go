// Package manifests renders the repository's kustomize overlays with the kustomize Go module (no
// kubectl needed) and decodes every object strictly into its Go API type.
package manifests

import (
	"bytes"
	"encoding/json"
	"fmt"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Object is one rendered object: its kind and name, and the typed value.
type Object struct {
	APIVersion, Kind, Name string
	Value                  any
}

// types maps apiVersion/kind to a constructor of the Go type the object must decode into.
var types = map[string]func() any{
	"v1/Namespace":                            func() any { return &corev1.Namespace{} },
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"batch/v1/Job":                            func() any { return &batchv1.Job{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return &networkingv1.NetworkPolicy{} },
	"keda.sh/v1alpha1/ScaledObject":           func() any { return &ScaledObject{} },
	"keda.sh/v1alpha1/TriggerAuthentication":  func() any { return &TriggerAuthentication{} },
	"postgresql.cnpg.io/v1/Cluster":           func() any { return &Cluster{} },
	"postgresql.cnpg.io/v1/Database":          func() any { return &Database{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1/PodMonitor":     func() any { return &monitoringv1.PodMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &monitoringv1.PrometheusRule{} },
}

// Render builds the kustomization in dir and decodes every object strictly: an unknown kind or
// an unknown field is an error.
func Render(dir string) ([]Object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", dir, err)
	}
	var out []Object
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", dir, err)
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", dir, err)
		}
		o, err := Decode(raw)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", dir, err)
		}
		out = append(out, o)
	}
	return out, nil
}

// Decode decodes one object's JSON into its Go type, rejecting unknown fields.
func Decode(raw []byte) (Object, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return Object{}, fmt.Errorf("decode: %w", err)
	}
	mk, ok := types[head.APIVersion+"/"+head.Kind]
	if !ok {
		return Object{}, fmt.Errorf("%s %s/%s: no Go type known for this kind", head.Metadata.Name, head.APIVersion, head.Kind)
	}
	v := mk()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Object{}, fmt.Errorf("%s %s: %w", head.Kind, head.Metadata.Name, err)
	}
	return Object{APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, Value: v}, nil
}
