package manual

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	got, err := Parse(`[{"name": "app", "requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}]`)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "250m", got[0].Requests.Cpu().String())
	assert.Equal(t, "1Gi", got[0].Limits.Memory().String())

	tests := map[string]string{
		`{"name": "app"}`:              "want [{",
		`[{"requests": {"cpu": "1"}}]`: "no container name",
		`[{"name": "a", "requests": {"cpu": "1"}}, {"name": "a", "requests": {"cpu": "1"}}]`: "listed twice",
		`[{"name": "a"}]`: "neither requests nor limits",
		`[{"name": "a", "requests": {"cpu": "-1"}}]`:   "negative request",
		`[{"name": "a", "requests": {"cpu": "lots"}}]`: "want [{",
	}
	for in, want := range tests {
		_, err := Parse(in)
		assert.ErrorContains(t, err, want, in)
	}
}
