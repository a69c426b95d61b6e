export { escapeLine, unescapeLine, type UnescapeMode } from './escape.js';
export { LineSplitter, DEFAULT_MAX_LINE_LENGTH, type LineSplitterOptions, type SplitResult } from './frame.js';
export {
  decodeDocument,
  describeValue,
  parseDocumentText,
  stripSymbolKeys,
  isPlainMapping,
  MAX_DEPTH,
  MAX_ALIAS_COUNT,
  MAX_DOCUMENT_LENGTH,
  type DocumentResult,
} from './document.js';
export {
  parseRequest,
  PARSE_ERROR,
  NO_COMMAND_ERROR,
  ARGS_NOT_ARRAY_ERROR,
  type Request,
  type ParseRequestResult,
  type ParseRequestOptions,
} from './request.js';
export { encodeReply, decodeReply, type ReplyInput, type DecodedReply, type DecodeReplyResult } from './reply.js';
export { encodeRequest, type RequestInput, type RequestFraming } from './request-encode.js';
export { defaultSocketPath, defaultDynoSocketPath, runtimeDir } from './socket-path.js';
export { yamlDocument, yamlString, yamlScalar, yamlQuoted, yamlNumber, yamlFlow } from './yaml-emit.js';
export { splitCommands, splitWords, shellWords } from './words.js';
