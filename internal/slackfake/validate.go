package slackfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Block Kit and message limits, from Slack's reference documentation.
const (
	maxMessageBlocks  = 50
	maxViewBlocks     = 100
	maxMessageText    = 40000
	maxSectionText    = 3000
	maxFields         = 10
	maxFieldText      = 2000
	maxHeaderText     = 150
	maxActions        = 25
	maxContextItems   = 10
	maxID             = 255
	maxButtonText     = 75
	maxButtonValue    = 2000
	maxURL            = 3000
	maxOptions        = 100
	maxOptionText     = 75
	maxOptionValue    = 150
	maxPlaceholder    = 150
	maxLabel          = 2000
	maxMarkdownText   = 12000
	maxViewTitle      = 24
	maxPrivateMetaLen = 3000
)

// blockTypes are the block types Slack accepts; the ones with limits worth
// checking are checked in checker.block.
var blockTypes = map[string]bool{
	"section": true, "header": true, "actions": true, "context": true, "divider": true,
	"input": true, "image": true, "markdown": true, "rich_text": true, "table": true,
	"file": true, "video": true,
}

// decodeJSON decodes arbitrary JSON keeping numbers exact.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// parseBlocks decodes, validates and stores a blocks array the way Slack
// does: every block gets a block_id. A missing or null array gives nil.
func (f *Fake) parseBlocks(raw []byte, maxBlocks int) (json.RawMessage, *apiError) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, errCode("invalid_blocks_format", err.Error())
	}
	if v == nil {
		return nil, nil
	}
	blocks, ok := v.([]any)
	if !ok {
		return nil, errCode("invalid_blocks_format", "blocks must be an array")
	}
	c := newChecker()
	c.blocks("", blocks, maxBlocks)
	if len(c.errs) > 0 {
		return nil, errCode("invalid_blocks", c.errs...)
	}
	for _, b := range blocks {
		if m := b.(map[string]any); m["block_id"] == nil {
			m["block_id"] = f.nextID("blk")
		}
	}
	out, err := json.Marshal(blocks)
	if err != nil {
		return nil, errCode("invalid_blocks_format", err.Error())
	}
	return out, nil
}

// checkText enforces the message text limit.
func checkText(text string) *apiError {
	if n := utf8.RuneCountInString(text); n > maxMessageText {
		return errCode("msg_too_long", fmt.Sprintf("text is %d characters, more than %d", n, maxMessageText))
	}
	return nil
}

// validateView checks a view object but not its blocks (see parseBlocks);
// it returns the reasons for rejection.
func validateView(v map[string]any) []string {
	c := newChecker()
	typ, _ := v["type"].(string)
	switch typ {
	case "modal":
		c.text("/title", v["title"], maxViewTitle, true)
		for _, k := range []string{"submit", "close"} {
			if v[k] != nil {
				c.text("/"+k, v[k], maxViewTitle, true)
			}
		}
	case "home":
	default:
		c.failf("/type", "must be modal or home")
	}
	c.maxLen("/callback_id", v["callback_id"], maxID)
	c.maxLen("/external_id", v["external_id"], maxID)
	c.maxLen("/private_metadata", v["private_metadata"], maxPrivateMetaLen)
	blocks, ok := v["blocks"].([]any)
	if !ok {
		c.failf("/blocks", "must be an array")
		return c.errs
	}
	if typ == "modal" && v["submit"] == nil {
		for i, b := range blocks {
			if m, _ := b.(map[string]any); m != nil && m["type"] == "input" {
				c.failf(fmt.Sprintf("/blocks/%d", i), "a modal with input blocks needs a submit button")
				break
			}
		}
	}
	return c.errs
}

// checker collects violations, worded like Slack's invalid_blocks reasons.
type checker struct {
	errs     []string
	blockIDs map[string]bool
}

func newChecker() *checker { return &checker{blockIDs: map[string]bool{}} }

func (c *checker) failf(ptr, format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...)+" [json-pointer:"+ptr+"]")
}

func (c *checker) maxLen(ptr string, v any, limit int) {
	if s, ok := v.(string); ok && utf8.RuneCountInString(s) > limit {
		c.failf(ptr, "must be less than %d characters", limit+1)
	}
}

func (c *checker) count(ptr string, items []any, lo, hi int) {
	if len(items) < lo {
		c.failf(ptr, "must provide at least %d items", lo)
	}
	if len(items) > hi {
		c.failf(ptr, "must be less than %d items", hi+1)
	}
}

func (c *checker) blocks(ptr string, blocks []any, maxBlocks int) {
	c.count(ptr, blocks, 0, maxBlocks)
	for i, b := range blocks {
		c.block(fmt.Sprintf("%s/%d", ptr, i), b)
	}
}

func (c *checker) block(ptr string, v any) {
	b, ok := v.(map[string]any)
	if !ok {
		c.failf(ptr, "must be an object")
		return
	}
	if id, ok := b["block_id"].(string); ok {
		c.maxLen(ptr+"/block_id", id, maxID)
		if c.blockIDs[id] {
			c.failf(ptr+"/block_id", "duplicate block_id %q", id)
		}
		c.blockIDs[id] = true
	}
	typ, _ := b["type"].(string)
	if !blockTypes[typ] {
		c.failf(ptr+"/type", "unsupported block type %q", typ)
		return
	}
	switch typ {
	case "section":
		fields, hasFields := b["fields"].([]any)
		if b["text"] == nil && !hasFields {
			c.failf(ptr, "must provide text or fields")
		}
		if b["text"] != nil {
			c.text(ptr+"/text", b["text"], maxSectionText, false)
		}
		if hasFields {
			c.count(ptr+"/fields", fields, 1, maxFields)
			for i, fl := range fields {
				c.text(fmt.Sprintf("%s/fields/%d", ptr, i), fl, maxFieldText, false)
			}
		}
		if b["accessory"] != nil {
			c.element(ptr+"/accessory", b["accessory"])
		}
	case "header":
		c.text(ptr+"/text", b["text"], maxHeaderText, true)
	case "actions":
		elems, _ := b["elements"].([]any)
		c.count(ptr+"/elements", elems, 1, maxActions)
		seen := map[string]bool{}
		for i, e := range elems {
			p := fmt.Sprintf("%s/elements/%d", ptr, i)
			if id := c.element(p, e); id != "" {
				if seen[id] {
					c.failf(p+"/action_id", "duplicate action_id %q in block", id)
				}
				seen[id] = true
			}
		}
	case "context":
		elems, _ := b["elements"].([]any)
		c.count(ptr+"/elements", elems, 1, maxContextItems)
		for i, e := range elems {
			p := fmt.Sprintf("%s/elements/%d", ptr, i)
			if m, _ := e.(map[string]any); m != nil && m["type"] == "image" {
				c.maxLen(p+"/alt_text", m["alt_text"], maxLabel)
				continue
			}
			c.text(p, e, maxSectionText, false)
		}
	case "input":
		c.text(ptr+"/label", b["label"], maxLabel, true)
		if b["hint"] != nil {
			c.text(ptr+"/hint", b["hint"], maxLabel, true)
		}
		if b["element"] == nil {
			c.failf(ptr+"/element", "must provide an element")
		} else {
			c.element(ptr+"/element", b["element"])
		}
	case "image":
		if alt, _ := b["alt_text"].(string); alt == "" {
			c.failf(ptr+"/alt_text", "must provide alt_text")
		}
		c.maxLen(ptr+"/alt_text", b["alt_text"], maxLabel)
		c.maxLen(ptr+"/image_url", b["image_url"], maxURL)
	case "markdown":
		if s, _ := b["text"].(string); s == "" {
			c.failf(ptr+"/text", "must provide text")
		}
		c.maxLen(ptr+"/text", b["text"], maxMarkdownText)
	}
}

// element checks an interactive element and returns its action_id.
func (c *checker) element(ptr string, v any) string {
	e, ok := v.(map[string]any)
	if !ok {
		c.failf(ptr, "must be an object")
		return ""
	}
	id, _ := e["action_id"].(string)
	c.maxLen(ptr+"/action_id", id, maxID)
	switch e["type"] {
	case "button":
		c.text(ptr+"/text", e["text"], maxButtonText, true)
		c.maxLen(ptr+"/value", e["value"], maxButtonValue)
		c.maxLen(ptr+"/url", e["url"], maxURL)
		if s, ok := e["style"].(string); ok && s != "primary" && s != "danger" {
			c.failf(ptr+"/style", "must be primary or danger")
		}
	case "static_select", "multi_static_select", "overflow":
		hi := maxOptions
		if e["type"] == "overflow" {
			hi = 5
		}
		if e["placeholder"] != nil {
			c.text(ptr+"/placeholder", e["placeholder"], maxPlaceholder, true)
		}
		if e["option_groups"] == nil {
			opts, _ := e["options"].([]any)
			c.count(ptr+"/options", opts, 1, hi)
			for i, o := range opts {
				p := fmt.Sprintf("%s/options/%d", ptr, i)
				om, _ := o.(map[string]any)
				c.text(p+"/text", om["text"], maxOptionText, true)
				c.maxLen(p+"/value", om["value"], maxOptionValue)
			}
		}
	case "plain_text_input":
		if e["placeholder"] != nil {
			c.text(ptr+"/placeholder", e["placeholder"], maxPlaceholder, true)
		}
	case nil, "":
		c.failf(ptr+"/type", "must provide a type")
	}
	return id
}

// text checks a text object: its type and a length of 1..limit characters.
func (c *checker) text(ptr string, v any, limit int, plainOnly bool) {
	t, ok := v.(map[string]any)
	if !ok {
		c.failf(ptr, "must be a text object")
		return
	}
	switch typ := t["type"]; {
	case typ == "plain_text":
	case typ == "mrkdwn" && !plainOnly:
	case plainOnly:
		c.failf(ptr+"/type", "must be plain_text")
	default:
		c.failf(ptr+"/type", "must be plain_text or mrkdwn")
	}
	s, _ := t["text"].(string)
	switch n := utf8.RuneCountInString(s); {
	case n == 0:
		c.failf(ptr+"/text", "must be more than 0 characters")
	case n > limit:
		c.failf(ptr+"/text", "must be less than %d characters", limit+1)
	}
}
