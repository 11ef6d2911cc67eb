package app

import (
	"context"
	"log/slog"
	"time"
)

// PartitionStore manages the delivery log's daily partitions.
type PartitionStore interface {
	EnsurePartitions(ctx context.Context, from, to time.Time) error
	DropPartitionsBefore(ctx context.Context, cutoff time.Time) ([]string, error)
}

// RunRetention keeps the delivery log's partitions: it creates those of yesterday to three days
// ahead and drops those older than retention, at start and then every interval, until ctx ends.
func RunRetention(ctx context.Context, store PartitionStore, retention, interval time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		MaintainPartitions(ctx, store, retention, time.Now(), log)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// MaintainPartitions runs one pass of the retention job at now.
func MaintainPartitions(ctx context.Context, store PartitionStore, retention time.Duration, now time.Time, log *slog.Logger) {
	if err := store.EnsurePartitions(ctx, now.AddDate(0, 0, -1), now.AddDate(0, 0, 3)); err != nil && ctx.Err() == nil {
		log.ErrorContext(ctx, "create delivery log partitions", "error", err)
	}
	dropped, err := store.DropPartitionsBefore(ctx, now.Add(-retention))
	if err != nil && ctx.Err() == nil {
		log.ErrorContext(ctx, "drop expired delivery log partitions", "error", err)
	}
	if len(dropped) > 0 {
		log.InfoContext(ctx, "dropped expired delivery log partitions", "partitions", dropped)
	}
}
