package chaos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/customertext/webhooks/libs/natsserver"
)

// Cluster is a Broker over a JetStream cluster of nats-server processes (libs/natsserver), for
// the clustered scenarios of issue 14. Its nodes are this binary run again: the program that
// starts one must call natsserver.RunNodeIfChild first in main.
type Cluster struct {
	*natsserver.Cluster
}

// StartCluster starts nodes servers in dir and waits for a meta leader.
func StartCluster(ctx context.Context, dir string, nodes int) (*Cluster, error) {
	c, err := natsserver.StartCluster(ctx, natsserver.ClusterOptions{Nodes: nodes, Dir: dir, Name: "chaos"})
	if err != nil {
		return nil, err
	}
	return &Cluster{c}, nil
}

// URL is every node's client URL.
func (c *Cluster) URL() string { return c.ClientURL() }

// Nodes is the number of servers.
func (c *Cluster) Nodes() int { return len(c.Cluster.Nodes()) }

// Kill ends node i with SIGKILL.
func (c *Cluster) Kill(i int) { c.Cluster.Nodes()[i].Kill() }

// Terminate ends node i with SIGTERM (escalating to SIGKILL after the library's 10 s).
func (c *Cluster) Terminate(i int, _ time.Duration) error {
	c.Cluster.Nodes()[i].Stop()
	return nil
}

// Restart starts node i again and waits until it is healthy and the cluster has a meta leader.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	n := c.Cluster.Nodes()[i]
	if n.Running() {
		return fmt.Errorf("nats node %s is still running", n.Name)
	}
	if err := n.Start(); err != nil {
		return err
	}
	if err := n.WaitReady(ctx); err != nil {
		return err
	}
	if _, err := c.MetaLeader(ctx); err != nil {
		return errors.Join(errors.New("no meta leader after a restart"), err)
	}
	return nil
}

// Running reports whether node i runs.
func (c *Cluster) Running(i int) bool { return c.Cluster.Nodes()[i].Running() }

// Stop ends every node.
func (c *Cluster) Stop() { c.Shutdown() }
