package manifests

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The KEDA and CloudNativePG objects are decoded strictly against these local structs: their Go
// API types live in the operators' own modules (github.com/kedacore/keda/v2 is the whole
// operator; CloudNativePG's API module is not on the module proxy this project can reach). The
// structs hold the fields of the upstream CRDs (keda.sh/v1alpha1, postgresql.cnpg.io/v1) that the
// manifests may use; a field they do not know fails the test, so a typo cannot pass.

// ScaledObject is keda.sh/v1alpha1 ScaledObject.
type ScaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ScaledObjectSpec `json:"spec"`
}

// ScaledObjectSpec is the spec of a ScaledObject.
type ScaledObjectSpec struct {
	ScaleTargetRef        ScaleTarget    `json:"scaleTargetRef"`
	PollingInterval       *int32         `json:"pollingInterval,omitempty"`
	InitialCooldownPeriod *int32         `json:"initialCooldownPeriod,omitempty"`
	CooldownPeriod        *int32         `json:"cooldownPeriod,omitempty"`
	IdleReplicaCount      *int32         `json:"idleReplicaCount,omitempty"`
	MinReplicaCount       *int32         `json:"minReplicaCount,omitempty"`
	MaxReplicaCount       *int32         `json:"maxReplicaCount,omitempty"`
	Advanced              *Advanced      `json:"advanced,omitempty"`
	Triggers              []ScaleTrigger `json:"triggers"`
	Fallback              *ScaleFallback `json:"fallback,omitempty"`
}

// ScaleTarget names the scaled workload.
type ScaleTarget struct {
	APIVersion             string `json:"apiVersion,omitempty"`
	Kind                   string `json:"kind,omitempty"`
	Name                   string `json:"name"`
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

// Advanced holds the HPA settings KEDA passes on.
type Advanced struct {
	HorizontalPodAutoscalerConfig *HPAConfig `json:"horizontalPodAutoscalerConfig,omitempty"`
	RestoreToOriginalReplicaCount bool       `json:"restoreToOriginalReplicaCount,omitempty"`
}

// HPAConfig is the generated HPA's name and behavior.
type HPAConfig struct {
	Name     string                                         `json:"name,omitempty"`
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
}

// ScaleTrigger is one scaler.
type ScaleTrigger struct {
	Type              string            `json:"type"`
	Name              string            `json:"name,omitempty"`
	UseCachedMetrics  bool              `json:"useCachedMetrics,omitempty"`
	Metadata          map[string]string `json:"metadata"`
	AuthenticationRef *AuthRef          `json:"authenticationRef,omitempty"`
	MetricType        string            `json:"metricType,omitempty"`
}

// AuthRef points at a TriggerAuthentication.
type AuthRef struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

// ScaleFallback is the replica count used while the scaler fails.
type ScaleFallback struct {
	FailureThreshold int32 `json:"failureThreshold"`
	Replicas         int32 `json:"replicas"`
}

// TriggerAuthentication is keda.sh/v1alpha1 TriggerAuthentication.
type TriggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretTargetRef []SecretTargetRef `json:"secretTargetRef,omitempty"`
		Env             []struct {
			Parameter     string `json:"parameter"`
			Name          string `json:"name"`
			ContainerName string `json:"containerName,omitempty"`
		} `json:"env,omitempty"`
	} `json:"spec"`
}

// SecretTargetRef maps a trigger parameter to a Secret's key.
type SecretTargetRef struct {
	Parameter string `json:"parameter"`
	Name      string `json:"name"`
	Key       string `json:"key"`
}

// Cluster is postgresql.cnpg.io/v1 Cluster.
type Cluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ClusterSpec `json:"spec"`
}

// ClusterSpec is the spec of a CloudNativePG Cluster.
type ClusterSpec struct {
	Instances             int                   `json:"instances"`
	ImageName             string                `json:"imageName,omitempty"`
	PrimaryUpdateStrategy string                `json:"primaryUpdateStrategy,omitempty"`
	Storage               StorageConfiguration  `json:"storage"`
	WalStorage            *StorageConfiguration `json:"walStorage,omitempty"`
	PostgresConfiguration *struct {
		Parameters map[string]string `json:"parameters,omitempty"`
	} `json:"postgresql,omitempty"`
	Bootstrap *struct {
		InitDB *struct {
			Database string                       `json:"database,omitempty"`
			Owner    string                       `json:"owner,omitempty"`
			Secret   *corev1.LocalObjectReference `json:"secret,omitempty"`
		} `json:"initdb,omitempty"`
	} `json:"bootstrap,omitempty"`
	Managed *struct {
		Roles []RoleConfiguration `json:"roles,omitempty"`
	} `json:"managed,omitempty"`
	Affinity *struct {
		EnablePodAntiAffinity *bool  `json:"enablePodAntiAffinity,omitempty"`
		TopologyKey           string `json:"topologyKey,omitempty"`
		PodAntiAffinityType   string `json:"podAntiAffinityType,omitempty"`
	} `json:"affinity,omitempty"`
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
}

// StorageConfiguration is a Cluster's PVC template.
type StorageConfiguration struct {
	StorageClass *string `json:"storageClass,omitempty"`
	Size         string  `json:"size,omitempty"`
}

// RoleConfiguration is one managed role.
type RoleConfiguration struct {
	Name            string                       `json:"name"`
	Ensure          string                       `json:"ensure,omitempty"`
	Login           bool                         `json:"login,omitempty"`
	PasswordSecret  *corev1.LocalObjectReference `json:"passwordSecret,omitempty"`
	InRoles         []string                     `json:"inRoles,omitempty"`
	ConnectionLimit *int64                       `json:"connectionLimit,omitempty"`
}

// Database is postgresql.cnpg.io/v1 Database.
type Database struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Name    string                      `json:"name"`
		Owner   string                      `json:"owner"`
		Ensure  string                      `json:"ensure,omitempty"`
		Cluster corev1.LocalObjectReference `json:"cluster"`
		Schemas []struct {
			Name   string `json:"name"`
			Owner  string `json:"owner,omitempty"`
			Ensure string `json:"ensure,omitempty"`
		} `json:"schemas,omitempty"`
	} `json:"spec"`
}
