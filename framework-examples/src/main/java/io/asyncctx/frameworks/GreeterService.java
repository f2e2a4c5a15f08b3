package io.asyncctx.frameworks;

import io.grpc.MethodDescriptor;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.stub.ServerCalls;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;

/**
 * The gRPC example's service, written without protoc: two methods over UTF-8 strings, a unary {@code Greeter/Hello}
 * and a server-streaming {@code Greeter/Count} (the request is a number n; the answers are "1" .. "n").
 *
 * <p>Threading: the descriptors are immutable; the handlers run on gRPC's executor.
 */
public final class GreeterService {

    /** UTF-8 strings as messages. */
    public static final MethodDescriptor.Marshaller<String> UTF8 = new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(String value) {
            return new ByteArrayInputStream(value.getBytes(StandardCharsets.UTF_8));
        }

        @Override
        public String parse(InputStream stream) {
            try {
                return new String(stream.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw Status.INTERNAL.withDescription("cannot read the message").withCause(e).asRuntimeException();
            }
        }
    };

    /** The unary method. */
    public static final MethodDescriptor<String, String> HELLO = MethodDescriptor.<String, String>newBuilder()
            .setType(MethodDescriptor.MethodType.UNARY)
            .setFullMethodName(MethodDescriptor.generateFullMethodName("example.Greeter", "Hello"))
            .setRequestMarshaller(UTF8).setResponseMarshaller(UTF8).build();

    /** The server-streaming method. */
    public static final MethodDescriptor<String, String> COUNT = MethodDescriptor.<String, String>newBuilder()
            .setType(MethodDescriptor.MethodType.SERVER_STREAMING)
            .setFullMethodName(MethodDescriptor.generateFullMethodName("example.Greeter", "Count"))
            .setRequestMarshaller(UTF8).setResponseMarshaller(UTF8).build();

    private GreeterService() {
    }

    /** The service, ready for {@code ServerBuilder.addService}. */
    public static ServerServiceDefinition definition() {
        return ServerServiceDefinition.builder("example.Greeter")
                .addMethod(HELLO, ServerCalls.asyncUnaryCall((name, reply) -> {
                    reply.onNext("hello " + name);
                    reply.onCompleted();
                }))
                .addMethod(COUNT, ServerCalls.asyncServerStreamingCall((n, replies) -> {
                    int count;
                    try {
                        count = Integer.parseInt(n.trim());
                    } catch (NumberFormatException e) {
                        replies.onError(Status.INVALID_ARGUMENT.withDescription("not a number: " + n)
                                .asRuntimeException());
                        return;
                    }
                    for (int i = 1; i <= count; i++) {
                        replies.onNext(Integer.toString(i));
                    }
                    replies.onCompleted();
                }))
                .build();
    }
}
