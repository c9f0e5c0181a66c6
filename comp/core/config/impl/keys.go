package impl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/lazyscale/lazyscale/comp/core/config/def"
)

const envPrefix = "LAZYSCALE_"

// Keys lists every configuration key in a stable order, for docs and error messages.
func Keys() []string {
	cfg := def.Defaults()
	fields := leafFields(&cfg)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// EnvName is the environment variable that sets key.
func EnvName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// leafFields maps each dotted key to its settable field in cfg. Keys come from the json tags
// that also name the YAML keys, so the file, the env and the docs cannot disagree.
func leafFields(cfg *def.Config) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			if f := v.Field(i); f.Kind() == reflect.Struct {
				walk(f, key)
			} else {
				out[key] = f
			}
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), "")
	return out
}

// flattenYAML turns a YAML document into dotted keys and scalar strings.
func flattenYAML(raw []byte) (map[string]string, error) {
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, &def.Error{Key: "config", Source: "file", Err: fmt.Errorf("parse YAML: %w", err)}
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, &def.Error{Key: "config", Source: "file", Err: fmt.Errorf("parse YAML: %w", err)}
	}
	out := map[string]string{}
	var walk func(node any, key string) error
	walk = func(node any, key string) error {
		switch n := node.(type) {
		case nil:
			return nil
		case map[string]any:
			for k, child := range n {
				childKey := k
				if key != "" {
					childKey = key + "." + k
				}
				if err := walk(child, childKey); err != nil {
					return err
				}
			}
			return nil
		case []any:
			// A list of scalars is its items joined by commas, as the environment gives it;
			// only list keys accept it (setField).
			items := make([]string, 0, len(n))
			for _, item := range n {
				switch v := item.(type) {
				case string:
					if strings.Contains(v, ",") {
						return &def.Error{Key: key, Source: "file", Err: fmt.Errorf("list item %q: commas are not allowed in items", v)}
					}
					items = append(items, v)
				case json.Number:
					items = append(items, v.String())
				default:
					return &def.Error{Key: key, Source: "file", Err: fmt.Errorf("list item %v: want a string", item)}
				}
			}
			out[key] = listPrefix + strings.Join(items, ",")
		case json.Number:
			out[key] = n.String()
		case bool:
			out[key] = strconv.FormatBool(n)
		case string:
			out[key] = n
		default:
			return &def.Error{Key: key, Source: "file", Err: fmt.Errorf("unsupported value %v", n)}
		}
		return nil
	}
	if doc == nil {
		return out, nil
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, &def.Error{Key: "config", Source: "file", Err: errors.New("the document must be a mapping of keys")}
	}
	return out, walk(doc, "")
}

// fromEnv returns the LAZYSCALE_ variables of environ, by env name (the key is recovered
// against the known keys in apply), less the kubelet's service links (servicelinks.go).
func fromEnv(environ []string) map[string]string {
	all := map[string]string{}
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok {
			all[name] = value
		}
	}
	links := serviceLinks(all)
	out := map[string]string{}
	for name, value := range all {
		if strings.HasPrefix(name, envPrefix) && !links[name] {
			out[name] = value
		}
	}
	return out
}

// apply sets values onto fields. For the env source, names are env names.
func apply(fields map[string]reflect.Value, values map[string]string, source string) error {
	byName := fields
	if source == "env" {
		byName = make(map[string]reflect.Value, len(fields))
		for k, f := range fields {
			byName[EnvName(k)] = f
		}
	}
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		f, ok := byName[name]
		if !ok {
			return &def.Error{Key: name, Source: source, Err: errors.New("unknown key")}
		}
		if err := setField(f, values[name]); err != nil {
			return &def.Error{Key: name, Source: source, Err: err}
		}
	}
	return nil
}

// listPrefix marks a value that came from a YAML list, so that a scalar key refuses it.
const listPrefix = "\x00list:"

func setField(f reflect.Value, s string) error {
	s = strings.TrimSpace(s)
	list, fromList := strings.CutPrefix(s, listPrefix)
	if f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String {
		// A comma-separated list (the environment), or a YAML list.
		items := []string{}
		for item := range strings.SplitSeq(list, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		f.Set(reflect.ValueOf(items))
		return nil
	}
	if fromList {
		return errors.New("a list, where a single value is wanted")
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		f.SetBool(b)
	case reflect.Int64:
		if f.Type() == reflect.TypeOf(time.Duration(0)) {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("want a duration such as 90s or 24h, got %q", s)
			}
			f.SetInt(int64(d))
			return nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer, got %q", s)
		}
		f.SetInt(n)
	case reflect.Int:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer, got %q", s)
		}
		f.SetInt(n)
	case reflect.Float64:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("want a number, got %q", s)
		}
		f.SetFloat(n)
	default:
		return fmt.Errorf("unsupported field kind %s", f.Kind())
	}
	return nil
}
