import { DockerfileParser } from 'dockerfile-ast';
import fs from 'node:fs';
const src = fs.readFileSync('/tmp/df1','utf8');
const df = DockerfileParser.parse(src);
console.log(df.getDirectives().map(d=>[d.getName(), d.getValue()]), df.getEscapeCharacter());
for (const ins of df.getInstructions()) {
  console.log(JSON.stringify({kw: ins.getKeyword(), inst: ins.getInstruction(), range: [ins.getRange().start.line, ins.getRange().end.line], raw: ins.getRawArgumentsContent(), flags: ins.getFlags?.().map(f=>[f.getName(), f.getValue()]), hd: ins.getHeredocs?.().map(h=>[h.getName(), h.getContentRange(), h.getDelimiterRange()])}));
}
