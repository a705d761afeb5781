package deploy

import (
	"net/url"
	"regexp"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"domicile"
	"domicile/checkpoint"
)

// maxWitnesses bounds the witnesses a deployment lists.
const maxWitnesses = 32

// witnessName is the syntax of a witness's name in the deployment file.
var witnessName = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,63}$`)

// parseWitnesses reads the witnesses section: the stand-alone witnesses
// (C2SP tlog-witness) the cells submit their checkpoints to.
//
//	witnesses:
//	  - name: auditor                      # for the server's logs
//	    url: https://witness.example/      # submission prefix: POST <url>/add-checkpoint
//	    key: witness.example+1a2b3c4d+BF…  # its cosignature verifier key
//	    required: true                     # a new checkpoint waits for its cosignature
//	    cells: [cn-gz1]                    # optional: only these cells (default: all)
//
// It returns the cells lists' nodes, which Parse checks once every cell
// is known.
func parseWitnesses(d *domicile.Deployment, v *yaml.Node) ([]*yaml.Node, error) {
	if v.Kind != yaml.SequenceNode {
		return nil, errAt(v, "witnesses must be a list")
	}
	if len(v.Content) > maxWitnesses {
		return nil, errAt(v, "more than %d witnesses", maxWitnesses)
	}
	var cells []*yaml.Node
	for _, n := range v.Content {
		if n.Kind != yaml.MappingNode {
			return nil, errAt(n, "a witness must be a mapping")
		}
		var w domicile.WitnessConfig
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if seen[k.Value] {
				return nil, errAt(k, "witness key %q appears twice", k.Value)
			}
			seen[k.Value] = true
			switch k.Value {
			case "name", "url", "key":
				if val.Kind != yaml.ScalarNode {
					return nil, errAt(val, "witness %s must be a string", k.Value)
				}
			}
			switch k.Value {
			case "name":
				w.Name = val.Value
				if !witnessName.MatchString(w.Name) {
					return nil, errAt(val, "witness name %q must be 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter", trunc(w.Name, 64))
				}
			case "url":
				w.URL = val.Value
				if err := checkWitnessURL(w.URL); err != "" {
					return nil, errAt(val, "witness url %q: %s", trunc(w.URL, 128), err)
				}
			case "key":
				w.Key = val.Value
				if _, err := checkpoint.NewCosignatureVerifier(w.Key); err != nil {
					return nil, errAt(val, "witness key: not a cosignature verifier key (<name>+<key ID>+<base64>, as `domicile witness key` prints it)")
				}
			case "required":
				if val.Kind != yaml.ScalarNode || val.Tag != "!!bool" {
					return nil, errAt(val, "witness required must be true or false")
				}
				if err := val.Decode(&w.Required); err != nil {
					return nil, errAt(val, "witness required must be true or false")
				}
			case "cells":
				if val.Kind != yaml.SequenceNode || len(val.Content) == 0 {
					return nil, errAt(val, "witness cells must be a non-empty list of cell ids (leave it out for every cell)")
				}
				for _, c := range val.Content {
					if c.Kind != yaml.ScalarNode {
						return nil, errAt(c, "witness cells must list cell ids")
					}
					if slices.Contains(w.Cells, c.Value) {
						return nil, errAt(c, "witness cell %q is listed twice", trunc(c.Value, 32))
					}
					w.Cells = append(w.Cells, c.Value)
					cells = append(cells, c)
				}
			default:
				return nil, errAt(k, "unknown witness key %q (want name, url, key, required, cells)", trunc(k.Value, 32))
			}
		}
		switch {
		case w.Name == "":
			return nil, errAt(n, "witness has no name")
		case w.URL == "":
			return nil, errAt(n, "witness %q has no url", w.Name)
		case w.Key == "":
			return nil, errAt(n, "witness %q has no key", w.Name)
		}
		for _, o := range d.Witnesses {
			switch {
			case o.Name == w.Name:
				return nil, errAt(n, "witness %q is declared twice", w.Name)
			case o.URL == w.URL:
				return nil, errAt(n, "witnesses %q and %q have the same url", o.Name, w.Name)
			case o.Key == w.Key:
				return nil, errAt(n, "witnesses %q and %q have the same key", o.Name, w.Name)
			}
		}
		d.Witnesses = append(d.Witnesses, w)
	}
	return cells, nil
}

// checkWitnessURL returns why u cannot be a witness's submission prefix,
// or "".
func checkWitnessURL(u string) string {
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return "not a URL"
	case p.Scheme != "http" && p.Scheme != "https":
		return "want an http:// or https:// URL"
	case p.Host == "":
		return "no host"
	case p.User != nil:
		return "credentials do not belong in the deployment file"
	case p.RawQuery != "" || p.Fragment != "" || p.ForceQuery:
		return "no query or fragment: the URL is a prefix"
	}
	return ""
}

// parseWitnessWait reads witness_wait: a duration from 1s to 1h.
func parseWitnessWait(d *domicile.Deployment, v *yaml.Node) error {
	t, err := time.ParseDuration(v.Value)
	if v.Kind != yaml.ScalarNode || err != nil || t < time.Second || t > time.Hour {
		return errAt(v, "witness_wait must be a duration from 1s to 1h, such as 10s")
	}
	d.WitnessWait = t
	return nil
}

// parseNoticeLead reads notice_lead: how long before a migration into
// this deployment its subjects' notices must have gone out (0s: the
// migration may run as soon as they have).
func parseNoticeLead(d *domicile.Deployment, v *yaml.Node) error {
	t, err := time.ParseDuration(v.Value)
	if v.Kind != yaml.ScalarNode || err != nil || t < 0 || t > 366*24*time.Hour {
		return errAt(v, "notice_lead must be a duration from 0s to 8784h, such as 720h")
	}
	d.NoticeLead = &t
	return nil
}
