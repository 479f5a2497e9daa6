package se.lotsa.fhirvalidator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;

/**
 * Validates FHIR R4 JSON files with HAPI FHIR's instance validator, fully offline.
 *
 * <p>Why this exists: the clinic's FHIR export (Patient, Consent, ServiceRequest and Task in a
 * Bundle) should be checked by a real FHIR validator, not only by our own tests. HL7 Sweden's
 * profile package cannot be fetched on these machines (there is no package server, only Maven
 * Central), so the export is checked against <b>base R4 only</b>: the StructureDefinitions,
 * ValueSets and CodeSystems bundled in hapi-fhir-validation-resources-r4, plus any profile a
 * resource declares itself that is among them. Nothing is fetched over the network.
 *
 * <p>Usage: {@code java -cp ... se.lotsa.fhirvalidator.Validate FILE.json...} (normally through
 * {@code tests/fhir-validator/validate.sh DIR}). All files are validated in one JVM because the
 * first validation costs 10-15 s of warm-up and the later ones well under a second.
 *
 * <p>Output: per file, the counts and every error and warning (with its location) on stderr for
 * people; on stdout exactly one JSON document for programs:
 * {@code {"files":[{"file":..,"errors":N,"warnings":N,"information":N,"messages":[{"severity":..,
 * "location":..,"message":..}]}]}} where errors counts ERROR and FATAL, and {@code messages}
 * holds the fatal, error and warning messages (severity "fatal", "error" or "warning").
 *
 * <p>Exit status: 0 when no file has an error, 1 when some file has, 2 when it cannot run (bad
 * arguments, an unreadable file, a file that is not JSON, or the validator itself failing).
 */
public final class Validate {

    private static final ObjectMapper JSON =
            new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private Validate() {}

    public static void main(String[] args) {
        // Quiet logging, set before any HAPI class (and so any logger) is loaded; -D overrides.
        // The parser's lenient handler warns about HAPI's own bundled definitions, not the input.
        defaultProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        defaultProperty("org.slf4j.simpleLogger.log.ca.uhn.fhir.parser.LenientErrorHandler", "error");
        // stdout carries the JSON document only: anything a library prints goes to stderr.
        PrintStream stdout = System.out;
        System.setOut(System.err);
        try {
            System.exit(run(args, stdout));
        } catch (Throwable e) {
            System.err.println("fhir-validator: the validator failed: " + e);
            e.printStackTrace(System.err);
            System.exit(2);
        }
    }

    private static int run(String[] args, PrintStream stdout) throws IOException {
        if (args.length == 0) {
            System.err.println("usage: Validate FILE.json...");
            return 2;
        }

        // Read and check every file first, so a bad input fails fast, before the warm-up.
        List<Path> paths = new ArrayList<>();
        List<String> texts = new ArrayList<>();
        for (String arg : args) {
            Path path = Path.of(arg);
            String text;
            try {
                text = Files.readString(path, StandardCharsets.UTF_8);
            } catch (IOException e) {
                System.err.println("fhir-validator: cannot read " + path + ": " + e.getMessage());
                return 2;
            }
            try {
                JsonNode node = JSON.readTree(text);
                if (node == null || !node.isObject()) {
                    System.err.println("fhir-validator: " + path
                            + " is empty or not a JSON object (a FHIR resource)");
                    return 2;
                }
            } catch (JsonProcessingException e) {
                System.err.println("fhir-validator: " + path + " is not JSON: " + e.getOriginalMessage()
                        + " (line " + e.getLocation().getLineNr() + ")");
                return 2;
            }
            paths.add(path);
            texts.add(text);
        }

        FhirValidator validator = newValidator();
        ObjectNode out = JSON.createObjectNode();
        ArrayNode files = out.putArray("files");
        boolean anyError = false;

        for (int i = 0; i < paths.size(); i++) {
            String name = paths.get(i).getFileName().toString();
            List<SingleValidationMessage> messages =
                    validator.validateWithResult(texts.get(i)).getMessages();

            int errors = 0, warnings = 0, information = 0;
            ObjectNode file = files.addObject();
            file.put("file", name);
            ArrayNode shown = JSON.createArrayNode();
            StringBuilder human = new StringBuilder();
            for (SingleValidationMessage m : messages) {
                ResultSeverityEnum severity = m.getSeverity();
                switch (severity) {
                    case FATAL, ERROR -> errors++;
                    case WARNING -> warnings++;
                    default -> {
                        information++;
                        continue; // counted, not listed
                    }
                }
                ObjectNode entry = shown.addObject();
                entry.put("severity", severity.getCode());
                entry.put("location", m.getLocationString());
                entry.put("message", m.getMessage());
                human.append(String.format("  %-7s %s%s%n          %s%s%n", severity.getCode(),
                        m.getLocationString(), lineCol(m), m.getMessage(),
                        m.getMessageId() == null ? "" : " [" + m.getMessageId() + "]"));
            }
            file.put("errors", errors);
            file.put("warnings", warnings);
            file.put("information", information);
            file.set("messages", shown);
            anyError |= errors > 0;

            System.err.printf("%s: %d error%s, %d warning%s, %d information%n", name,
                    errors, errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s", information);
            System.err.print(human);
        }

        stdout.println(JSON.writeValueAsString(out));
        stdout.flush();
        return anyError ? 1 : 0;
    }

    /** Base R4 only, offline: the bundled definitions, the built-in code systems, and snapshots. */
    private static FhirValidator newValidator() {
        FhirContext ctx = FhirContext.forR4();
        ValidationSupportChain support = new ValidationSupportChain(
                new DefaultProfileValidationSupport(ctx),
                new CommonCodeSystemsTerminologyService(ctx),
                new InMemoryTerminologyServerValidationSupport(ctx),
                new SnapshotGeneratingValidationSupport(ctx));
        FhirInstanceValidator module = new FhirInstanceValidator(support);
        FhirValidator validator = ctx.newValidator();
        validator.registerValidatorModule(module);
        return validator;
    }

    private static void defaultProperty(String key, String value) {
        if (System.getProperty(key) == null) {
            System.setProperty(key, value);
        }
    }

    private static String lineCol(SingleValidationMessage m) {
        if (m.getLocationLine() == null) {
            return "";
        }
        return " (line " + m.getLocationLine()
                + (m.getLocationCol() == null ? "" : ", col " + m.getLocationCol()) + ")";
    }
}
