// The Java side of scripts/interop.ts (npm run interop:java): compiled and run by it against the official AWS
// Encryption SDK for Java 2.x, with the folder holding keys.tsv, context.tsv and ours.tsv (their columns:
// scripts/interop.ts).
//
// Decrypts kms-envelope's messages (ours.tsv) and checks each against its case, then encrypts every case itself
// into theirs.tsv. Exit status: 0 when all decrypted, 1 when some did not.

import com.amazonaws.encryptionsdk.AwsCrypto;
import com.amazonaws.encryptionsdk.CommitmentPolicy;
import com.amazonaws.encryptionsdk.CryptoAlgorithm;
import com.amazonaws.encryptionsdk.CryptoResult;
import com.amazonaws.encryptionsdk.MasterKeyProvider;
import com.amazonaws.encryptionsdk.internal.VersionInfo;
import com.amazonaws.encryptionsdk.jce.JceMasterKey;
import com.amazonaws.encryptionsdk.multi.MultipleProviderFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import javax.crypto.spec.SecretKeySpec;

public class Interop {
  private static final Map<String, String> RSA_TRANSFORMATIONS =
      Map.of(
          "OAEP-SHA1", "RSA/ECB/OAEPWithSHA-1AndMGF1Padding",
          "OAEP-SHA256", "RSA/ECB/OAEPWithSHA-256AndMGF1Padding",
          "OAEP-SHA384", "RSA/ECB/OAEPWithSHA-384AndMGF1Padding",
          "OAEP-SHA512", "RSA/ECB/OAEPWithSHA-512AndMGF1Padding",
          "PKCS1", "RSA/ECB/PKCS1Padding");

  private static Path folder;
  private static Map<String, String> keys;

  /** The tab-separated rows of that file in the folder. */
  private static List<String[]> readRows(String name) throws Exception {
    List<String[]> rows = new ArrayList<>();
    for (String line : Files.readAllLines(folder.resolve(name), StandardCharsets.UTF_8)) {
      if (!line.isEmpty()) rows.add(line.split("\t", -1));
    }
    return rows;
  }

  private static byte[] fromBase64(String text) {
    return Base64.getDecoder().decode(text);
  }

  /** The DER bytes of a PEM block given in base64. */
  private static byte[] pemBody(String name) {
    String pem = new String(fromBase64(keys.get(name)), StandardCharsets.US_ASCII);
    return Base64.getMimeDecoder().decode(pem.replaceAll("-----[A-Z ]+-----", ""));
  }

  /** The raw master key kms-envelope's keyring of that name matches (same namespace, key name and key). */
  private static JceMasterKey masterKey(String name) throws Exception {
    String namespace = keys.get("namespace");
    if (name.startsWith("aes-")) {
      return JceMasterKey.getInstance(new SecretKeySpec(fromBase64(keys.get(name)), "AES"), namespace, name, "AES/GCM/NoPadding");
    }
    KeyFactory rsa = KeyFactory.getInstance("RSA");
    PublicKey publicKey = rsa.generatePublic(new X509EncodedKeySpec(pemBody("rsa-public")));
    PrivateKey privateKey = rsa.generatePrivate(new PKCS8EncodedKeySpec(pemBody("rsa-private")));
    return JceMasterKey.getInstance(publicKey, privateKey, namespace, name, RSA_TRANSFORMATIONS.get(name.substring(4)));
  }

  private static MasterKeyProvider<?> keyProvider(String name) throws Exception {
    if (name.equals("multi")) return MultipleProviderFactory.buildMultiProvider(masterKey("aes-256"), masterKey("rsa-OAEP-SHA256"));
    return masterKey(name);
  }

  private static CryptoAlgorithm suite(int id) {
    return Arrays.stream(CryptoAlgorithm.values()).filter((algorithm) -> algorithm.getValue() == id).findFirst().orElseThrow();
  }

  private static String describe(Exception error) {
    String text = error.getClass().getSimpleName() + ": " + error.getMessage();
    return text.length() > 300 ? text.substring(0, 300) : text;
  }

  public static void main(String[] args) throws Exception {
    folder = Path.of(args[0]);
    keys = new HashMap<>();
    for (String[] row : readRows("keys.tsv")) keys.put(row[0], row[1]);
    Map<String, String> context = new TreeMap<>();
    for (String[] row : readRows("context.tsv")) {
      context.put(new String(fromBase64(row[0]), StandardCharsets.UTF_8), new String(fromBase64(row[1]), StandardCharsets.UTF_8));
    }
    List<String[]> ours = readRows("ours.tsv");

    AwsCrypto decryptor = AwsCrypto.builder().withCommitmentPolicy(CommitmentPolicy.RequireEncryptAllowDecrypt).build();
    List<String> failures = new ArrayList<>();
    for (String[] c : ours) {
      String what = String.format("0x%04x %s %s", Integer.parseInt(c[0]), c[1], c[2]);
      try {
        CryptoResult<byte[], ?> result = decryptor.decryptData(keyProvider(c[1]), fromBase64(c[6]));
        Map<String, String> found = new TreeMap<>(result.getEncryptionContext());
        found.remove("aws-crypto-public-key");
        if (!Arrays.equals(result.getResult(), fromBase64(c[5]))) failures.add(what + ": another plaintext");
        else if (!found.equals(context)) failures.add(what + ": another context");
        else if (result.getCryptoAlgorithm().getValue() != Integer.parseInt(c[0]) || result.getHeaders().getFrameLength() != Integer.parseInt(c[3])) {
          failures.add(what + ": another suite or frame length");
        }
      } catch (Exception error) { // any failure is reported with its case
        failures.add(what + ": " + describe(error));
      }
    }
    String writer = "the Java SDK " + VersionInfo.versionNumber();
    Files.writeString(folder.resolve("writer.txt"), writer, StandardCharsets.UTF_8);
    System.out.printf("%s decrypted %d of kms-envelope's %d messages%n", writer, ours.size() - failures.size(), ours.size());
    for (String failure : failures) System.out.println("  " + failure);

    StringBuilder theirs = new StringBuilder();
    for (String[] c : ours) {
      CryptoAlgorithm algorithm = suite(Integer.parseInt(c[0]));
      CommitmentPolicy policy = algorithm.isCommitting() ? CommitmentPolicy.RequireEncryptRequireDecrypt : CommitmentPolicy.ForbidEncryptAllowDecrypt;
      try {
        AwsCrypto encryptor =
            AwsCrypto.builder().withCommitmentPolicy(policy).withEncryptionAlgorithm(algorithm).withEncryptionFrameSize(Integer.parseInt(c[4])).build();
        byte[] ciphertext = encryptor.encryptData(keyProvider(c[1]), fromBase64(c[5]), context).getResult();
        c[6] = Base64.getEncoder().encodeToString(ciphertext);
        theirs.append(String.join("\t", c)).append('\n');
      } catch (Exception error) { // reported; the case is left out, which the Node side counts as a failure
        failures.add(String.format("encrypting 0x%04x %s %s: %s", algorithm.getValue(), c[1], c[2], describe(error)));
        System.out.println("  " + failures.get(failures.size() - 1));
      }
    }
    Files.writeString(folder.resolve("theirs.tsv"), theirs, StandardCharsets.UTF_8);
    System.exit(failures.isEmpty() ? 0 : 1);
  }
}
