/**
 * Split a command line the way a shell splits words (single and double
 * quotes, backslash escapes; no expansion), with `separator` (`;`, as einhornsh
 * does; null: none) separating commands.
 */
export function splitWords(line: string, separator: string | null): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (quote === "'") {
      if (ch === "'") quote = null;
      else word += ch;
      continue;
    }
    if (quote === '"') {
      if (ch === '"') quote = null;
      else if (ch === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1] as string)) word += line[++i];
      else word += ch;
      continue;
    }
    if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === '\\') {
      if (i + 1 < line.length) word += line[++i];
      inWord = true;
    } else if (separator !== null && ch === separator) {
      if (inWord) words.push(word);
      if (words.length) commands.push(words);
      words = [];
      word = '';
      inWord = false;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unbalanced ${quote} quote in: ${line}`);
  if (inWord) words.push(word);
  if (words.length) commands.push(words);
  return commands;
}

/** einhornsh's command lines: `;` separates commands. */
export function splitCommands(line: string): string[][] {
  return splitWords(line, ';');
}

/** One command line as a shell splits it into words (einhorn's Shellwords.shellsplit). */
export function shellWords(line: string): string[] {
  return splitWords(line, null)[0] ?? [];
}
