// Package natsperms holds the test that runs every service's NATS operations as that service's
// user, with the accounts and permissions of k8s/nats/values.yaml, against a real nats-server.
package natsperms
