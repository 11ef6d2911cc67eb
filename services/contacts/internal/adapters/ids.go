package adapters

import (
	"fmt"

	"github.com/google/uuid"
)

func newGroupID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new group id: %w", err)
	}
	return "grp_" + id.String(), nil
}
