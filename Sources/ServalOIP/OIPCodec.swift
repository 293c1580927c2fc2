/// Open Inference Protocol v2 REST codecs.
public enum OIPCodec {}
