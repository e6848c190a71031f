// A small, safe Markdown renderer for model cards: headings, paragraphs, lists, code blocks, inline code,
// bold, italic and links (http/https only). It builds DOM nodes; the text never becomes HTML.

import { h } from "./ui.js";

// a link's URL may hold balanced parentheses, one level deep (a Wikipedia-style .../wiki/Mercury_(planet))
const URL_PART = String.raw`(?:[^()\s]|\([^()\s]*\))+`;
const INLINE = new RegExp(String.raw`(\`[^\`]+\`|\*\*[^*]+\*\*|\*[^*]+\*|\[[^\]]+\]\(${URL_PART}\))`);
const LINK = new RegExp(String.raw`^\[([^\]]+)\]\((${URL_PART})\)$`);

function inline(text) {
  return text.split(INLINE).filter(Boolean).map((part) => {
    if (part.startsWith("`") && part.endsWith("`") && part.length > 1) return h("code", part.slice(1, -1));
    if (part.startsWith("**") && part.endsWith("**") && part.length > 4) return h("strong", part.slice(2, -2));
    if (part.startsWith("*") && part.endsWith("*") && part.length > 2) return h("em", part.slice(1, -1));
    const link = part.match(LINK);
    if (link) {
      return /^https?:\/\//.test(link[2]) ? h("a", { href: link[2], rel: "noopener noreferrer", target: "_blank" },
        link[1]) : link[1];
    }
    return part;
  });
}

export function markdown(source) {
  const out = h("div.markdown");
  const lines = (source || "").replace(/\r\n/g, "\n").split("\n");
  let para = [];
  let list = null;
  const flush = () => {
    if (para.length) out.append(h("p", inline(para.join(" "))));
    para = [];
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith("```")) {
      flush();
      const code = [];
      for (i++; i < lines.length && !lines[i].startsWith("```"); i++) code.push(lines[i]);
      out.append(h("pre", h("code", code.join("\n"))));
      continue;
    }
    const heading = line.match(/^(#{1,4})\s+(.*)$/);
    const item = line.match(/^\s*(?:[-*]|\d+\.)\s+(.*)$/);
    if (heading) {
      flush();
      out.append(h(`h${Math.min(6, heading[1].length + 2)}`, inline(heading[2])));
    } else if (item) {
      if (para.length) flush();
      if (!list) { list = h(/^\s*\d/.test(line) ? "ol" : "ul"); out.append(list); }
      list.append(h("li", inline(item[1])));
    } else if (!line.trim()) {
      flush();
    } else {
      list = null;
      para.push(line.trim());
    }
  }
  flush();
  return out;
}
