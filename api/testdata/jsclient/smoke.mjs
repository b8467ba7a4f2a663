// Smoke test of a Stagehand server with the AWS SDK for JavaScript v3.
// api/jsclient_test.go runs it with STAGEHAND_ENDPOINT, STAGEHAND_REGION,
// STAGEHAND_ACCESS_KEY_ID, STAGEHAND_SECRET_ACCESS_KEY, STAGEHAND_CHANNEL_ARN
// and STAGEHAND_UNKNOWN_STAGE_ARN set, and checks the JSON summary it prints:
// the script only calls the API and reports what the SDK returned.
import {
  IVSRealTimeClient,
  CreateStageCommand,
  GetStageCommand,
  ListStagesCommand,
  CreateEncoderConfigurationCommand,
  CreateStorageConfigurationCommand,
  StartCompositionCommand,
  GetCompositionCommand,
  TagResourceCommand,
  ListTagsForResourceCommand,
  UntagResourceCommand,
} from "@aws-sdk/client-ivs-realtime";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const client = new IVSRealTimeClient({
  endpoint: env("STAGEHAND_ENDPOINT"),
  region: env("STAGEHAND_REGION"),
  credentials: {
    accessKeyId: env("STAGEHAND_ACCESS_KEY_ID"),
    secretAccessKey: env("STAGEHAND_SECRET_ACCESS_KEY"),
  },
  maxAttempts: 1,
});

const isDate = (d) => d instanceof Date && !Number.isNaN(d.getTime());

const summary = {};

const created = await client.send(new CreateStageCommand({
  name: "js-stage",
  participantTokenConfigurations: [
    { userId: "js-user", capabilities: ["PUBLISH"], duration: 60, attributes: { seat: "1" } },
  ],
  tags: { sdk: "javascript" },
}));
const stageArn = created.stage.arn;
const token = created.participantTokens?.[0];
summary.createStage = {
  arn: stageArn,
  name: created.stage.name,
  tags: created.stage.tags,
  tokens: created.participantTokens?.length ?? 0,
  token: token && {
    userId: token.userId,
    capabilities: token.capabilities,
    duration: token.duration,
    attributes: token.attributes,
    participantId: token.participantId,
    hasToken: typeof token.token === "string" && token.token.split(".").length === 3,
    expirationTimeIsDate: isDate(token.expirationTime),
  },
};

const got = await client.send(new GetStageCommand({ arn: stageArn }));
summary.getStage = {
  arn: got.stage.arn,
  name: got.stage.name,
  recording: got.stage.autoParticipantRecordingConfiguration,
  endpoints: got.stage.endpoints,
};

const listed = await client.send(new ListStagesCommand({}));
summary.listStages = { arns: listed.stages.map((s) => s.arn) };

const encoder = await client.send(new CreateEncoderConfigurationCommand({
  name: "js-1080p",
  video: { width: 1920, height: 1080, framerate: 30 },
}));
summary.encoder = { arn: encoder.encoderConfiguration.arn, video: encoder.encoderConfiguration.video };

const storage = await client.send(new CreateStorageConfigurationCommand({
  name: "js-storage",
  s3: { bucketName: "js-recordings" },
}));
summary.storage = { arn: storage.storageConfiguration.arn, s3: storage.storageConfiguration.s3 };

// The JavaScript SDK sends explicit zeros (gridGap: 0), which the server
// must honour rather than replace with the default gap of 2.
const started = await client.send(new StartCompositionCommand({
  stageArn,
  layout: { grid: { gridGap: 0 } },
  destinations: [
    { channel: { channelArn: env("STAGEHAND_CHANNEL_ARN"), encoderConfigurationArn: encoder.encoderConfiguration.arn } },
    { s3: { storageConfigurationArn: storage.storageConfiguration.arn, encoderConfigurationArns: [encoder.encoderConfiguration.arn] } },
  ],
}));
summary.startComposition = {
  arn: started.composition.arn,
  state: started.composition.state,
  layout: started.composition.layout,
  destinations: started.composition.destinations.length,
  startTimeIsDate: isDate(started.composition.startTime),
};

const composition = await client.send(new GetCompositionCommand({ arn: started.composition.arn }));
summary.getComposition = {
  arn: composition.composition.arn,
  stageArn: composition.composition.stageArn,
  state: composition.composition.state,
  layout: composition.composition.layout,
  destinations: composition.composition.destinations.map((d) => ({
    state: d.state,
    channel: d.configuration?.channel,
    s3: d.configuration?.s3,
    recordingPrefix: d.detail?.s3?.recordingPrefix,
  })),
};

await client.send(new TagResourceCommand({ resourceArn: stageArn, tags: { team: "media", env: "test" } }));
const tagged = await client.send(new ListTagsForResourceCommand({ resourceArn: stageArn }));
await client.send(new UntagResourceCommand({ resourceArn: stageArn, tagKeys: ["sdk", "env"] }));
const untagged = await client.send(new ListTagsForResourceCommand({ resourceArn: stageArn }));
summary.tags = { afterTag: tagged.tags, afterUntag: untagged.tags };

try {
  await client.send(new GetStageCommand({ arn: env("STAGEHAND_UNKNOWN_STAGE_ARN") }));
  summary.notFound = { succeeded: true };
} catch (err) {
  summary.notFound = {
    name: err.name,
    message: err.message,
    status: err.$metadata?.httpStatusCode,
    fault: err.$fault,
  };
}

process.stdout.write(JSON.stringify(summary) + "\n");
