export { splitCommands, splitWords, shellWords } from '@einhyrningsins/protocol/words';
