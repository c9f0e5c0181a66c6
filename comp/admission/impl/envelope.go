package impl

import (
	"encoding/json"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
)

// readEnvelope returns the AdmissionReview's apiVersion, kind and request.uid. It is the only
// parsing the server does on every review, so it avoids encoding/json's reflection: one
// validating pass (json.Valid, no allocation) and one scan over the top-level keys that skips
// every other value, the pod included. Keys match exactly, as the apiserver writes them.
func readEnvelope(body []byte) (env envelope, err error) {
	if !json.Valid(body) {
		// The slow path is for bad input only: encoding/json says where it went wrong.
		var discard any
		if err := json.Unmarshal(body, &discard); err != nil {
			return env, err
		}
		return env, errors.New("invalid JSON")
	}
	s := scanner{b: body}
	s.ws()
	if !s.at('{') {
		return env, errors.New("the review is not a JSON object")
	}
	err = s.object(func(key []byte) error {
		switch string(key) {
		case "apiVersion":
			env.APIVersion, err = s.stringValue()
		case "kind":
			env.Kind, err = s.stringValue()
		case "request":
			if s.peek() == 'n' { // null
				s.skip()
				env.Request = nil
				return nil
			}
			if !s.at('{') {
				return errors.New("request is not an object")
			}
			req := &struct {
				UID types.UID `json:"uid"`
			}{}
			env.Request = req
			return s.object(func(key []byte) error {
				if string(key) != "uid" {
					s.skip()
					return nil
				}
				uid, err := s.stringValue()
				req.UID = types.UID(uid)
				return err
			})
		default:
			s.skip()
		}
		return err
	})
	return env, err
}

// scanner walks JSON already known to be valid.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) at(c byte) bool { return s.peek() == c }

// str consumes a string at the cursor and returns its raw content and whether it has escapes.
func (s *scanner) str() ([]byte, bool) {
	start := s.i + 1
	escaped := false
	for s.i = start; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '\\':
			escaped = true
			s.i++
		case '"':
			raw := s.b[start:s.i]
			s.i++
			return raw, escaped
		}
	}
	return nil, escaped
}

// stringValue consumes a JSON string value; null reads as "".
func (s *scanner) stringValue() (string, error) {
	switch s.peek() {
	case '"':
		start := s.i
		raw, escaped := s.str()
		if !escaped {
			return string(raw), nil
		}
		var out string
		err := json.Unmarshal(s.b[start:s.i], &out)
		return out, err
	case 'n':
		s.skip()
		return "", nil
	}
	return "", fmt.Errorf("expected a string at offset %d", s.i)
}

// skip consumes one value of any kind.
func (s *scanner) skip() {
	switch s.peek() {
	case '"':
		s.str()
	case '{', '[':
		depth := 0
		for ; s.i < len(s.b); s.i++ {
			switch s.b[s.i] {
			case '"':
				s.str()
				s.i--
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return
				}
			}
		}
	default:
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
	}
}

// object consumes an object at the cursor, calling field with the cursor on each value; field
// must consume the value.
func (s *scanner) object(field func(key []byte) error) error {
	s.i++ // '{'
	if s.at('}') {
		s.i++
		return nil
	}
	for {
		s.ws()
		key, _ := s.str()
		s.ws()
		s.i++ // ':'
		s.ws()
		if err := field(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return fmt.Errorf("unexpected input at offset %d", s.i)
		}
	}
}
